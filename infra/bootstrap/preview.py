"""The bootstrap program offline, under the same Pulumi mocks as the stacks (infra/preview.py).

`python -m infra.bootstrap.preview [account]` prints its resource records and outputs as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from infra.bootstrap.program import PROJECT, parse_bootstrap_config
from infra.preview import Preview, run_program
from kernel.paths import stack_path
from kernel.stack_config import ConfigError, to_pulumi_config

HERE = Path(__file__).resolve().parent
PROGRAM = HERE / "__main__.py"
DEFAULT_STACK = "example-account"


def preview_bootstrap(stack: str = DEFAULT_STACK, config_overrides: dict[str, Any] | None = None) -> Preview:
    """Validate the bootstrap stack's config, run the program under mocks, return its graph and outputs."""
    path = stack_path(stack, HERE)
    if not path.exists():
        raise ConfigError(stack, [f"no bootstrap stack file {path}"])
    raw = {**((yaml.safe_load(path.read_text()) or {}).get("config") or {}), **(config_overrides or {})}
    config = parse_bootstrap_config(stack, raw)  # a bad config fails here, before any resource
    records, outputs = run_program(PROGRAM, PROJECT, config.account, str(raw["aws:region"]), to_pulumi_config(raw))
    return Preview(stack=stack, resources=records, outputs=outputs, config=config)


if __name__ == "__main__":
    print(
        json.dumps(
            {**preview_bootstrap(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_STACK).to_json(), "project": PROJECT},
            indent=2,
        )
    )
