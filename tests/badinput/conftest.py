"""The bad-input tables: one parametrized table per area (config, data, requests, state files,
CLI arguments). Each row must end refused: its exit code or HTTP status, one clear line, no
traceback, no 500, no silent acceptance."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
