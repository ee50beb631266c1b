"""The domain kernel: facts about environments, instances and names, defined once.

Imported by infra/ (the Pulumi program), ci/ (the `mlops` command) and policies/ (the rules), so
the program, the pipeline and the policy pack can never disagree about them. It imports nothing
of ours and nothing heavier than the standard library.
"""
