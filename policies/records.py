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

from kernel.wire import has_ciphertext, plain  # Pulumi's wire form, read once (kernel/wire.py)

if TYPE_CHECKING:  # CrossGuard's types; the auditor reads records without pulumi_policy
    from pulumi_policy import PolicyProviderResource, PolicyResource, ResourceValidationArgs

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
