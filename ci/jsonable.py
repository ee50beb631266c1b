"""JSON for CI: numpy scalars, tuples, datetimes and paths turned into plain values."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any


def plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item") and callable(value.item):
        return value.item()
    if hasattr(value, "to_dict") and callable(value.to_dict):
        return plain(value.to_dict())
    return value


def dumps(value: Any) -> str:
    return json.dumps(plain(value), indent=2, sort_keys=True, default=str)
