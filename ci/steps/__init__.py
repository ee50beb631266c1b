"""The lifecycle steps: what each `mlops` command does once its flags are parsed.

train, tune, evaluate, register, promote and roll back, verify, monitor, and what they share
(data set pins, model digests, lineage, the image, the training container run here).
May import `ci/aws/`, ci's root modules (errors, progress), `kernel`, `infra`, `ml`;
never `ci.emulator` or the command layer (`ci.cli`, `ci.commands*`).
"""
