"""Make the folder holding this file importable as the `ml` package.

`python ml/train.py` and SageMaker's script mode (where the folder may be /opt/ml/code) run an
entry point as a plain script: Python then puts the folder itself on sys.path, which would make
`data.py` or `model.py` importable under bare names and `ml` not at all. An entry point run as
a script imports this module first: it registers the folder as `ml` (whatever its name) and
takes the folder off sys.path so that nothing of ours shadows another package.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent

if "ml" not in sys.modules or Path(getattr(sys.modules["ml"], "__file__", "") or "").resolve().parent != _HERE:
    _spec = importlib.util.spec_from_file_location("ml", _HERE / "__init__.py", submodule_search_locations=[str(_HERE)])
    assert _spec is not None and _spec.loader is not None  # a file location always has both
    _module = importlib.util.module_from_spec(_spec)
    sys.modules["ml"] = _module
    _spec.loader.exec_module(_module)

sys.path[:] = [p for p in sys.path if not p or Path(p).resolve() != _HERE]
