"""The delivery-pipeline fixtures (moto's server, stack copies, the in-process CLI), reused here."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

CI_TESTS = Path(__file__).resolve().parents[1] / "ci"
sys.path.insert(0, str(CI_TESTS))
sys.path.insert(0, str(Path(__file__).parent))

_spec = importlib.util.spec_from_file_location("ci_tests_conftest", CI_TESTS / "conftest.py")
_ci = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ci)

moto_url, emulator, stacks, boto, mlops = _ci.moto_url, _ci.emulator, _ci.stacks, _ci.boto, _ci.mlops
