"""Pulumi's wire form of a value, made plain: one reading for the preview, state files and CrossGuard.

The engine, `pulumi stack export` and the SDK's mocks mark a secret with a signature key and wrap
it; values it cannot know yet are sentinel strings. `plain` unwraps the first and turns the second
into `UNKNOWN`, so the offline preview (`infra.preview`) and the policy records (`policies.records`)
read one value one way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from kernel.aws_model import UNKNOWN  # one definition of a value known only after deployment

# `pulumi stack export` and the SDK mark special values (secrets, assets) with this key.
SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"

# The engine's placeholders for values computed during an update (pulumi_policy.proxy).
UNKNOWN_SENTINELS = frozenset(
    {
        "1c4a061d-8072-4f0a-a4cb-0ff528b18fe7",
        "3eeb2bf0-c639-47a8-9e75-3b44932eb421",
        "04da6b54-80e4-46f7-96ec-b56ff0331ba9",
        "6a19a0b0-7e62-4c92-b797-7f8e31da9cc2",
        "030794c1-ac77-496b-92df-f27374a8bd58",
        "e48ece36-62e2-4504-bad9-02848725956a",
        "dd056dcd-154b-4c76-9bd3-c8f88648b5ff",
    }
)
_JSON_LEAVES = (int, float, bool, type(None))


def plain(value: Any, *, stringify: bool = False) -> Any:
    """Deep copy into plain dicts/lists: unwrap secrets, drop `__defaults`/`__meta`, mark unknowns.

    Accepts `pulumi_policy` proxies too (their `__target` holds the raw value). With `stringify`,
    any other object (an SDK asset, a resource reference) becomes its `str`, so the result is JSON:
    the preview's records are written out; the policies keep objects as they come.
    """
    target = _proxy_target(value)
    if target is not None:
        value = target
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        if value.get(SIG_KEY) == SECRET_SIG:
            if "value" in value:  # in-memory form (engine, CrossGuard, the SDK's mocks)
                return plain(value["value"], stringify=stringify)
            if "plaintext" in value:  # `pulumi stack export --show-secrets`: the value as JSON text
                try:
                    return plain(json.loads(value["plaintext"]), stringify=stringify)
                except (TypeError, json.JSONDecodeError):
                    return plain(value["plaintext"], stringify=stringify)
            return UNKNOWN  # only ciphertext: present, but not readable without the stack's key
        return {str(k): plain(v, stringify=stringify) for k, v in value.items() if k not in ("__defaults", "__meta")}
    if isinstance(value, (list, tuple)) or _is_sequence_proxy(value):
        return [plain(v, stringify=stringify) for v in value]
    secret_value = getattr(value, "value", None) if type(value).__name__ == "Secret" else None
    if secret_value is not None:
        return plain(secret_value, stringify=stringify)
    if stringify and not isinstance(value, _JSON_LEAVES):
        return str(value)
    return value


def has_ciphertext(value: Any) -> bool:
    """Does `value` hold, anywhere, a secret this process cannot read (ciphertext only)?"""
    if isinstance(value, Mapping):
        if value.get(SIG_KEY) == SECRET_SIG:
            return "value" not in value and "plaintext" not in value
        return any(has_ciphertext(v) for v in value.values())
    if isinstance(value, list):
        return any(has_ciphertext(v) for v in value)
    return False


def _proxy_target(value: Any) -> Any:
    if type(value).__name__ in ("_DictProxy", "_ListProxy", "_DictSecretsProxy", "_ListSecretsProxy"):
        return value["__target"]
    return None


def _is_sequence_proxy(value: Any) -> bool:
    return type(value).__name__ in ("_ListProxy", "_ListSecretsProxy")
