"""One resource record for every source the policies read.

Rules never see where a resource came from: the offline preview (`infra.preview`), a
`pulumi stack export` file of what is really deployed, or the CrossGuard analyzer during
`pulumi preview --policy-pack`. Each loader here turns its source into the same `Resource`:
type token, name, URN, properties in Pulumi's camelCase wire form, parent, provider,
dependencies. Values the engine cannot know yet (CrossGuard during preview) become `UNKNOWN`,
which rules treat as "set, but unknowable": they never report on what they cannot see.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kernel.aws_model import UNKNOWN  # one definition of a value known only after deployment

if TYPE_CHECKING:  # CrossGuard's types; the auditor reads records without pulumi_policy
    from pulumi_policy import PolicyProviderResource, PolicyResource, ResourceValidationArgs

# `pulumi stack export` marks special values (secrets, assets) with this key.
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

STACK_TYPE = "pulumi:pulumi:Stack"


class StateFileError(ValueError):
    """A file that is not a readable `pulumi stack export` document."""


@dataclass(frozen=True)
class Resource:
    """A resource as every rule sees it."""

    urn: str
    type: str
    name: str
    props: Mapping[str, Any] = field(default_factory=dict)
    custom: bool = True
    id: str = ""
    parent: str = ""
    provider: str = ""
    dependencies: tuple[str, ...] = ()
    # Keys read from a state file's outputs because its inputs lacked them: what AWS reports,
    # not what the program declared. Rules about declarations (management conflicts) skip them.
    observed_only: frozenset[str] = frozenset()
    source: str = "preview"
    # Top-level props holding a secret only as ciphertext (a `pulumi stack export` without
    # --show-secrets): they read as UNKNOWN, and rules that depend on them report "cannot verify".
    secret_keys: frozenset[str] = frozenset()

    @property
    def canonical_type(self) -> str:
        return canonical_type(self.type)

    @property
    def label(self) -> str:
        """How messages name a resource: its logical name and type."""
        return f"{self.name} ({self.type})"

    def get(self, key: str, default: Any = None) -> Any:
        return self.props.get(key, default)


# --- type tokens ---------------------------------------------------------------------------


def canonical_type(type_token: str) -> str:
    """Fold deprecated V2 tokens onto their v7 names: `aws:s3/bucketV2:BucketV2` -> `aws:s3/bucket:Bucket`.

    pulumi-aws v5/v6 named the split-out S3 resources `...V2`; v7 renamed them back. A state file
    from an older provider must be judged by the same rules.
    """
    if not type_token.endswith("V2") or ":" not in type_token:
        return type_token
    package_module, _, cls = type_token.rpartition(":")
    package, _, module = package_module.partition(":")
    mod_path, _, member = module.partition("/")
    if member.endswith("V2") and cls.endswith("V2"):
        return f"{package}:{mod_path}/{member[:-2]}:{cls[:-2]}"
    return type_token


def name_from_urn(urn: str) -> str:
    return urn.rsplit("::", 1)[-1] if "::" in urn else urn


def type_from_urn(urn: str) -> str:
    """The resource's own type token: the last `$`-separated part of the URN's type segment."""
    parts = urn.split("::")
    if len(parts) < 4:
        return ""
    return parts[2].rsplit("$", 1)[-1]


# --- value normalisation -------------------------------------------------------------------


def plain(value: Any) -> Any:
    """Deep copy into plain dicts/lists: unwrap secrets, drop `__defaults`/`__meta`, mark unknowns.

    Accepts `pulumi_policy` proxies too (their `__target` holds the raw value).
    """
    target = _proxy_target(value)
    if target is not None:
        value = target
    if isinstance(value, str):
        return UNKNOWN if value in UNKNOWN_SENTINELS else value
    if isinstance(value, Mapping):
        if value.get(SIG_KEY) == SECRET_SIG:
            if "value" in value:  # in-memory form (engine, CrossGuard)
                return plain(value["value"])
            if "plaintext" in value:  # `pulumi stack export --show-secrets`: the value as JSON text
                try:
                    return plain(json.loads(value["plaintext"]))
                except (TypeError, json.JSONDecodeError):
                    return plain(value["plaintext"])
            return UNKNOWN  # only ciphertext: present, but not readable without the stack's key
        return {str(k): plain(v) for k, v in value.items() if k not in ("__defaults", "__meta")}
    if isinstance(value, (list, tuple)) or _is_sequence_proxy(value):
        return [plain(v) for v in value]
    secret_value = getattr(value, "value", None) if type(value).__name__ == "Secret" else None
    if secret_value is not None:
        return plain(secret_value)
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


# --- loaders -------------------------------------------------------------------------------


def from_preview(resource: Mapping[str, Any]) -> Resource:
    """A record of `infra.preview.Preview.resources` (or `mlops preview --json`)."""
    urn = str(resource["urn"])
    return Resource(
        urn=urn,
        type=str(resource.get("type") or type_from_urn(urn)),
        name=str(resource.get("name") or name_from_urn(urn)),
        props=plain(resource.get("props") or {}),
        custom=bool(resource.get("custom", True)),
        id=str(resource.get("id") or ""),
        parent=str(resource.get("parent") or ""),
        provider=str(resource.get("provider") or ""),
        dependencies=tuple(resource.get("dependencies") or ()),
        source="preview",
    )


def from_preview_graph(
    resources: Iterable[Mapping[str, Any]], outputs: Mapping[str, Any] | None = None
) -> list[Resource]:
    """All records of a preview; the stack's outputs become the props of its `pulumi:pulumi:Stack` record,
    as they are in a state file, so stack-level rules read them the same way from either source."""
    records = [from_preview(r) for r in resources]
    if outputs is None:
        return records
    return [_with_props(r, {**r.props, **plain(outputs)}) if r.type == STACK_TYPE else r for r in records]


def from_state_resource(resource: Mapping[str, Any]) -> Resource:
    """One entry of `deployment.resources` in a `pulumi stack export` (v3) file.

    Props are the declared inputs; a key the inputs lack is read from the outputs (what the provider
    reported), so a resource recorded by an older provider, or imported, is still judged on its state.
    """
    urn = str(resource.get("urn") or "")
    if not urn:
        raise StateFileError("a resource in deployment.resources has no 'urn'")
    raw_inputs = resource.get("inputs") or {}
    raw_outputs = resource.get("outputs") or {}
    inputs = plain(raw_inputs)
    outputs = plain(raw_outputs)
    observed = frozenset(k for k in outputs if k not in inputs)
    props = {**{k: outputs[k] for k in observed}, **inputs}
    secret = frozenset(k for k in props if has_ciphertext(raw_outputs.get(k) if k in observed else raw_inputs.get(k)))
    return Resource(
        urn=urn,
        type=str(resource.get("type") or type_from_urn(urn)),
        name=name_from_urn(urn),
        props=props,
        custom=bool(resource.get("custom", False)),
        id=str(resource.get("id") or ""),
        parent=str(resource.get("parent") or ""),
        provider=str(resource.get("provider") or ""),
        dependencies=tuple(resource.get("dependencies") or ()),
        observed_only=observed,
        source="state",
        secret_keys=secret,
    )


@dataclass(frozen=True)
class StateFile:
    """What a `pulumi stack export` file says: its stack, project and resources."""

    path: str
    stack: str
    project: str
    resources: list[Resource]
    pulumi_version: str = ""


def load_state(path: str | Path) -> StateFile:
    """Read a `pulumi stack export` file (deployment version 3, any provider version)."""
    path = Path(path)
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise StateFileError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as err:
        raise StateFileError(f"{path}: cannot read: {err}") from None
    except json.JSONDecodeError as err:
        raise StateFileError(f"{path}: not JSON ({err}); expected the output of `pulumi stack export`") from None
    if not isinstance(document, dict) or "deployment" not in document:
        raise StateFileError(f"{path}: no 'deployment' key; expected the output of `pulumi stack export`")
    version = document.get("version")
    if version != 3:
        raise StateFileError(
            f"{path}: deployment version {version!r} is not supported; expected 3 "
            "(`pulumi stack export` from Pulumi 3.x)"
        )
    deployment = document["deployment"]
    if not isinstance(deployment, dict):
        raise StateFileError(f"{path}: 'deployment' is not an object")
    raw_resources = deployment.get("resources")
    if raw_resources is None:
        raw_resources = []  # an empty stack exports no resources key
    if not isinstance(raw_resources, list):
        raise StateFileError(f"{path}: deployment.resources is not a list")
    records = [from_state_resource(r) for r in raw_resources]
    stack, project = "", ""
    for r in records:
        if r.type == STACK_TYPE:
            parts = r.urn.split("::")
            stack = parts[0].removeprefix("urn:pulumi:") if parts else ""
            project = parts[1] if len(parts) > 1 else ""
            break
    manifest = deployment.get("manifest") or {}
    return StateFile(str(path), stack, project, records, str(manifest.get("version", "")))


def from_policy_resource(resource: PolicyResource) -> Resource:
    """A `pulumi_policy.PolicyResource` (what a StackValidationPolicy receives)."""
    dependencies = getattr(resource, "dependencies", None) or []
    return _crossguard_record(
        resource,
        parent=getattr(getattr(resource, "parent", None), "urn", "") or "",
        dependencies=tuple(getattr(d, "urn", "") for d in dependencies),
    )


def from_validation_args(args: ResourceValidationArgs) -> Resource:
    """A `pulumi_policy.ResourceValidationArgs` (what a ResourceValidationPolicy receives)."""
    opts = getattr(args, "opts", None)
    return _crossguard_record(args, parent=(getattr(opts, "parent", None) or "") if opts is not None else "")


def provider_record(provider: PolicyProviderResource | None) -> Resource | None:
    """The provider of a CrossGuard resource (`PolicyProviderResource`), for its default tags."""
    return _crossguard_record(provider) if provider is not None else None


def _crossguard_record(
    resource: PolicyResource | ResourceValidationArgs | PolicyProviderResource,
    parent: str = "",
    dependencies: tuple[str, ...] = (),
) -> Resource:
    """What CrossGuard's three views of a resource share; stacks and our components are not custom resources."""
    return Resource(
        urn=resource.urn,
        type=resource.resource_type,
        name=resource.name,
        props=plain(resource.props or {}),
        custom=not resource.resource_type.startswith(("pulumi:pulumi:", "mlops:")),
        parent=parent,
        provider=getattr(getattr(resource, "provider", None), "urn", "") or "",
        dependencies=dependencies,
        source="crossguard",
    )


def _with_props(resource: Resource, props: Mapping[str, Any]) -> Resource:
    from dataclasses import replace

    return replace(resource, props=props)
