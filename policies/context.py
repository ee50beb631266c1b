"""What the rules need to know about the stack they judge, beyond its resources.

Rules are pure functions of (records, context). The context is built once per audit: from the
stack config (`kernel.stack_config.load_stack_config`, duck-typed here so `policies` imports nothing of
`infra`), from a CrossGuard pack's config, or — for a state file audited without `--stack` —
inferred from the resources, with every guess listed in `notes`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from kernel.instances import TIER_TRAINING_TYPES

ENVIRONMENTS = ("dev", "staging", "prod", "local")
LEVELS = ("advisory", "mandatory", "disabled")

# The largest GPU training instances each environment tier may use, whatever a stack allows.
ENVIRONMENT_GPU_CEILING: dict[str, tuple[str, ...]] = TIER_TRAINING_TYPES

BASE_REQUIRED_TAGS = ("environment", "owner", "cost-center")


@dataclass(frozen=True)
class Suppression:
    """An explicit, expiring exception: this rule does not apply to this resource, because..."""

    rule: str
    resource: str  # URN, logical name or physical name (id)
    reason: str
    expires: date

    def matches(self, rule_id: str, urn: str, name: str, physical_id: str = "") -> bool:
        return self.rule == rule_id and self.resource in {urn, name, physical_id} - {""}

    def expired(self, today: date) -> bool:
        return self.expires < today

    def to_json(self) -> dict[str, str]:
        return {
            "rule": self.rule,
            "resource": self.resource,
            "reason": self.reason,
            "expires": self.expires.isoformat(),
        }


@dataclass(frozen=True)
class CostAssumptions:
    """Usage the resource graph cannot tell: traffic, stored data, log volume, retraining cadence."""

    serverless_requests_per_month: float = 1_000_000
    serverless_mean_duration_ms: float = 100.0
    payload_kb: float = 10.0
    storage_gb: Mapping[str, float] = field(
        default_factory=lambda: {"data": 100.0, "artifacts": 50.0, "capture": 20.0, "access-logs": 5.0, "default": 10.0}
    )
    log_ingestion_gb_per_group: float = 5.0
    ecr_storage_gb: float = 10.0
    kms_requests_per_key: float = 1_000_000
    sns_publishes_per_month: float = 10_000
    training_runs_per_month: float = 4.0

    def to_json(self) -> dict[str, Any]:
        return {
            "serverlessRequestsPerMonth": self.serverless_requests_per_month,
            "serverlessMeanDurationMs": self.serverless_mean_duration_ms,
            "payloadKb": self.payload_kb,
            "storageGb": dict(self.storage_gb),
            "logIngestionGbPerGroup": self.log_ingestion_gb_per_group,
            "ecrStorageGb": self.ecr_storage_gb,
            "kmsRequestsPerKey": self.kms_requests_per_key,
            "snsPublishesPerMonth": self.sns_publishes_per_month,
            "trainingRunsPerMonth": self.training_runs_per_month,
        }


@dataclass(frozen=True)
class PolicyContext:
    """The stack facts and policy settings a rule may read. `None` means unknown: rules that need
    an unknown fact are not evaluated, and the audit says so."""

    stack: str = ""
    environment: str | None = None
    region: str | None = None
    models: tuple[str, ...] | None = None
    allowed_training_types: tuple[str, ...] | None = None
    has_vpc: bool | None = None
    required_tags: tuple[str, ...] = ()
    monthly_budget_usd: float | None = None
    github_repository: str | None = None
    default_enforcement: str | None = None
    enforcement: Mapping[str, str] = field(default_factory=dict)
    suppressions: tuple[Suppression, ...] = ()
    today: date = field(default_factory=date.today)
    cost: CostAssumptions = field(default_factory=CostAssumptions)
    notes: tuple[str, ...] = ()

    # --- construction ---------------------------------------------------------------------

    @classmethod
    def from_stack_config(cls, config: Any, today: date | None = None) -> PolicyContext:
        """From `kernel.stack_config.StackConfig` (attribute access only)."""
        policy = config.policy
        return cls(
            stack=config.stack,
            environment=config.environment,
            region=config.region,
            models=tuple(config.models),
            allowed_training_types=tuple(config.training.allowedInstanceTypes),
            has_vpc=bool(getattr(config, "private_network", config.vpc.subnetIds)),
            required_tags=tuple(dict.fromkeys((*BASE_REQUIRED_TAGS, *config.tags))),
            monthly_budget_usd=float(config.monitoring.monthlyBudgetUsd),
            github_repository=config.github.repository,
            default_enforcement=policy.defaultEnforcement,
            enforcement=dict(policy.enforcement),
            suppressions=tuple(Suppression(s.rule, s.resource, s.reason, s.expires) for s in policy.suppressions),
            today=today or date.today(),
        )

    @classmethod
    def from_pack_config(cls, config: Mapping[str, Any], today: date | None = None) -> PolicyContext:
        """From a CrossGuard policy's config (the keys of `PACK_CONFIG_SCHEMA`)."""
        config = dict(config or {})
        env = config.get("environment")
        if env is not None and env not in ENVIRONMENTS:
            raise ValueError(f"policy config 'environment': {env!r} is not valid; allowed: {', '.join(ENVIRONMENTS)}")
        suppressions = tuple(
            _suppression(s, f"policy config suppressions[{i}]") for i, s in enumerate(config.get("suppressions") or [])
        )
        types = config.get("allowedTrainingInstanceTypes")
        budget = config.get("monthlyBudgetUsd")
        return cls(
            stack=str(config.get("stack") or ""),
            environment=env,
            region=config.get("region"),
            models=tuple(config["models"]) if config.get("models") is not None else None,
            allowed_training_types=tuple(types) if types is not None else None,
            has_vpc=config.get("hasVpc"),
            required_tags=tuple(config.get("requiredTags") or ()),
            monthly_budget_usd=float(budget) if budget is not None else None,
            github_repository=config.get("githubRepository"),
            suppressions=suppressions,
            today=today or date.today(),
        )

    def to_pack_config(self) -> dict[str, Any]:
        """The stack facts a CrossGuard policy reads from its config (the inverse of `from_pack_config`).

        Enforcement levels are not here: Pulumi carries them per policy as `enforcementLevel`.
        """
        out: dict[str, Any] = {
            "stack": self.stack,
            "requiredTags": list(self.required_tags),
            "suppressions": [s.to_json() for s in self.suppressions],
        }
        optional = {
            "environment": self.environment,
            "region": self.region,
            "models": list(self.models) if self.models is not None else None,
            "allowedTrainingInstanceTypes": list(self.allowed_training_types)
            if self.allowed_training_types is not None
            else None,
            "hasVpc": self.has_vpc,
            "monthlyBudgetUsd": self.monthly_budget_usd,
            "githubRepository": self.github_repository,
        }
        out.update({k: v for k, v in optional.items() if v is not None})
        return out

    def with_notes(self, *notes: str) -> PolicyContext:
        return replace(self, notes=self.notes + tuple(notes))

    # --- derived facts --------------------------------------------------------------------

    @property
    def training_ceiling(self) -> tuple[str, ...] | None:
        if self.environment is None:
            return None
        return ENVIRONMENT_GPU_CEILING.get(self.environment, ())

    def enforcement_for(self, rule_id: str, severity: str, pinned: str | None = None) -> str:
        """advisory | mandatory | disabled for one rule in this stack.

        A per-rule setting in the stack config wins; then a level the rule pins for itself (critical
        rules are mandatory everywhere); then the stack's default; then the environment's default:
        mandatory in staging and prod (and when the environment is unknown), advisory in dev and local.
        """
        if rule_id in self.enforcement:
            return self.enforcement[rule_id]
        if pinned:
            return pinned
        if severity == "critical":
            return "mandatory"
        if self.default_enforcement:
            return self.default_enforcement
        return "advisory" if self.environment in ("dev", "local") else "mandatory"


def _suppression(raw: Any, where: str) -> Suppression:
    if not isinstance(raw, Mapping) or not {"rule", "resource", "reason", "expires"} <= set(raw):
        raise ValueError(f"{where}: expected rule, resource, reason and expires (YYYY-MM-DD)")
    expires = raw["expires"]
    if not isinstance(expires, date):
        try:
            expires = date.fromisoformat(str(expires))
        except ValueError:
            raise ValueError(f"{where}.expires: {expires!r} is not a date YYYY-MM-DD") from None
    if not str(raw["reason"]).strip():
        raise ValueError(f"{where}.reason: say why the rule does not apply")
    return Suppression(str(raw["rule"]), str(raw["resource"]), str(raw["reason"]), expires)


def infer_context(records: Iterable[Any], stack: str = "", today: date | None = None) -> PolicyContext:
    """A context for a state file audited without `--stack`: only what the resources show.

    The environment is read from an `environment` tag when every tagged resource agrees; otherwise it
    stays unknown and the rules that depend on it are not evaluated.
    """
    envs: set[str] = set()
    for r in records:
        tags = (r.props.get("tagsAll") or r.props.get("tags")) if hasattr(r, "props") else None
        if isinstance(tags, Mapping) and isinstance(tags.get("environment"), str):
            envs.add(tags["environment"])
    notes = ["no --stack given: judged without a stack config (no required tags, allowlist, budget or suppressions)"]
    environment = None
    if len(envs) == 1 and next(iter(envs)) in ENVIRONMENTS:
        environment = next(iter(envs))
        notes.append(f"environment '{environment}' inferred from the resources' environment tag")
    else:
        notes.append(
            "environment unknown: environment-specific rules were not evaluated; unpinned rules are judged as mandatory"
        )
    return PolicyContext(stack=stack, environment=environment, today=today or date.today(), notes=tuple(notes))
