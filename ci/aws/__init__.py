"""Adapters to what lives outside this process: AWS and the stack's state.

Sessions and clients (`clients`), S3 pinned by version and digest, the model registry, the
dry-run session, and the stack's files and outputs (`stackfile`, `outputs`: what `pulumi up`
reads and writes). May import only ci's root modules (errors, progress), `kernel`,
`infra` and `ml`: never a step, the emulator or the command layer.
"""
