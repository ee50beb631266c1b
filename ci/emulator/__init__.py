"""Stand-ins for `pulumi up` and SageMaker hosting, on this machine against moto, and the demo.

`pulumi_up` makes a stack's core exist in the emulator, `hosting` serves a deployed package
with `ml.serve` and writes SageMaker's data capture, `demo` runs the whole lifecycle on them.
Sits beside `ci.steps`: may import the steps, `ci/aws/`, ci's root modules, `kernel`, `infra`
and `ml`; never the command layer. No step imports the emulator.
"""
