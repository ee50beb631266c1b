"""The bad-input tables: one parametrized table per area (config, data, requests, state files,
CLI arguments). Each row must end refused: its exit code or HTTP status, one clear line, no
traceback, no 500, no silent acceptance."""

import importlib.util
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
_ML = Path(__file__).resolve().parents[1] / "ml"
sys.path.insert(0, str(_ML))
_spec = importlib.util.spec_from_file_location("ml_tests_conftest", _ML / "conftest.py")
_ml = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ml)

mlp_model_dir = _ml.mlp_model_dir  # the small trained model the serving tests use
