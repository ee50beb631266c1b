"""Fixtures: the CI tests' emulator fixtures (moto's server on loopback, the `mlops` runner,
the SageMaker stand-in, the AWS call recorder), imported from tests/ci/conftest.py."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

CI_TESTS = Path(__file__).resolve().parents[1] / "ci"
sys.path.insert(0, str(CI_TESTS))
sys.path.insert(0, str(Path(__file__).resolve().parent))

_spec = importlib.util.spec_from_file_location("ci_fixtures_for_permissions", CI_TESTS / "conftest.py")
_ci = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ci)

moto_url = _ci.moto_url
emulator = _ci.emulator
stacks = _ci.stacks
mlops = _ci.mlops
sagemaker = _ci.sagemaker
aws_calls = _ci.aws_calls
