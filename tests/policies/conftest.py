"""Policy tests import their helpers from policy_testkit (this directory is on sys.path under pytest)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
