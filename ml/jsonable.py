"""Values made JSON: numpy scalars and arrays, tuples and sets, datetimes and paths as plain values.

One definition for ml/ and for ci/ (which may import ml; ml imports nothing of ours). It imports
no numpy: numpy values are known by their type's module, so the `mlops` command stays light.
Pulumi's wire values (secrets, unknowns) are another matter: `kernel.wire`.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import PurePath
from typing import Any


def plain(value: Any, *, nan_as_null: bool = False) -> Any:
    """A deep copy JSON can write: keys as text, sequences as lists, every leaf by `scalar`.

    `nan_as_null`: a float NaN becomes None (JSON has no NaN; the drift report's `--json` wants null).
    """
    if isinstance(value, dict):
        return {str(k): plain(v, nan_as_null=nan_as_null) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v, nan_as_null=nan_as_null) for v in value]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict) and not callable(getattr(value, "item", None)):  # a report, a frame
        return plain(to_dict(), nan_as_null=nan_as_null)
    value = scalar(value)
    if isinstance(value, list):  # a numpy array
        return plain(value, nan_as_null=nan_as_null)
    if nan_as_null and isinstance(value, float) and value != value:
        return None
    return value


def scalar(value: Any) -> Any:
    """One value as JSON's: numpy (np.int64(3) -> 3, an array -> its list), datetime -> ISO text, path -> text.

    Anything else with `.item()` (a one-element tensor) gives its item; anything else is returned as it is.
    """
    if type(value).__module__ == "numpy":
        return value.tolist()  # a numpy scalar's Python value; an array's nested list
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, PurePath):
        return str(value)
    item = getattr(value, "item", None)
    return item() if callable(item) else value


def dumps(value: Any) -> str:
    """Indented, sorted-key JSON of `plain(value)`; whatever is still not JSON is written as its `str`."""
    return json.dumps(plain(value), indent=2, sort_keys=True, default=str)
