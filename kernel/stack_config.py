"""One typed, validated configuration object per stack.

Every environment runs the same program; what differs lives in `stacks/Pulumi.<stack>.yaml`
and is checked here, in one place, before any resource is declared. An error names the key,
the bad value and what is allowed, and lists every problem at once.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

from kernel import aws_rules, names
from kernel.aws_model import member_limits
from kernel.instances import GPU_TRAINING_TYPES, HOSTING_TYPES, TIER_TRAINING_TYPES
from kernel.paths import known_stacks, stack_name, stack_path

NAMESPACE = "mlops"

ENVIRONMENTS = ("dev", "staging", "prod", "local")
REGIONS = ("us-east-1", "us-east-2", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2")

# A package is registered in the environment that trained it and deployed downstream as it is
# (dev -> staging -> prod), so an environment reads the registry, model data and key of these:
UPSTREAM_ENVIRONMENTS = {"dev": (), "local": (), "staging": ("dev",), "prod": ("dev", "staging")}
DOWNSTREAM_ENVIRONMENTS = {
    env: tuple(d for d, ups in UPSTREAM_ENVIRONMENTS.items() if env in ups) for env in UPSTREAM_ENVIRONMENTS
}
SERVING_MODES = ("serverless", "instance")
ROLLOUT_TYPES = ("canary", "linear", "all_at_once")
SERVERLESS_MEMORY_STEP_MB = (
    1024  # 1 GB steps: https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html
)
# Classification and regression metrics evaluation reports (ml/evaluate.py; a test holds the two together).
GATE_METRICS = ("roc_auc", "accuracy", "f1", "log_loss", "rmse", "mae", "r2", "mape")
UNIT_INTERVAL_METRICS = frozenset({"roc_auc", "accuracy", "f1", "r2"})
ENFORCEMENT_LEVELS = ("advisory", "mandatory", "disabled")
PACKAGE_ARN = re.compile(r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:model-package/[A-Za-z0-9-]{1,63}/\d+$")
MODEL_NAME = re.compile(rf"^{names.NAME_WORDS.pattern}$")  # lengths: whatever every derived name allows
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
GITHUB_REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
TAG_KEY = re.compile(r"^[\w .:/=+@-]{1,128}$")
Raw = dict[str, Any]  # a stack file's `config:` mapping, keys as written (`mlops:training`)


def bulleted(problems: Iterable[object]) -> str:
    """Problems one a line, as the list under a sentence that counts them (config and preflight errors)."""
    return "\n".join(f"  - {p}" for p in problems)


class ConfigError(ValueError):
    """A stack configuration that must not be deployed; carries every problem found."""

    def __init__(self, stack: str, problems: list[str]):
        self.stack = stack
        self.problems = problems
        super().__init__(f"stack '{stack}' has {len(problems)} configuration error(s):\n{bulleted(problems)}")


@dataclass(frozen=True)
class TrainingConfig:
    allowedInstanceTypes: tuple[str, ...]
    defaultInstanceType: str
    spot: bool
    maxRuntimeSeconds: int
    maxWaitSeconds: int


@dataclass(frozen=True)
class AutoscalingConfig:
    minCapacity: int
    maxCapacity: int
    targetInvocationsPerInstance: int


@dataclass(frozen=True)
class RolloutConfig:
    type: str
    stepPercent: int
    bakeSeconds: int


@dataclass(frozen=True)
class ServingConfig:
    mode: str
    instanceType: str
    initialInstanceCount: int
    serverlessMemoryMb: int
    serverlessMaxConcurrency: int
    autoscaling: AutoscalingConfig
    rollout: RolloutConfig
    dataCaptureSamplingPercent: int


@dataclass(frozen=True)
class GateConfig:
    metric: str
    minImprovement: float
    minimums: dict[str, float]


@dataclass(frozen=True)
class MonitoringConfig:
    alertEmail: str
    latencyP99Ms: int
    error5xxThreshold: int
    driftThreshold: float
    monthlyBudgetUsd: float


@dataclass(frozen=True)
class RetentionConfig:
    logDays: int
    artifactDays: int
    captureDays: int


@dataclass(frozen=True)
class GithubConfig:
    repository: str
    environment: str
    defaultBranch: str = "main"  # the branch whose workflows staging and prod trust (OIDC subject)


@dataclass(frozen=True)
class VpcConfig:
    subnetIds: tuple[str, ...] = ()
    securityGroupIds: tuple[str, ...] = ()

    @property
    def enabled(self) -> bool:
        return bool(self.subnetIds)


@dataclass(frozen=True)
class NetworkConfig:
    """The private network the stack builds (infra/network.py): no internet route, AWS through VPC endpoints."""

    enabled: bool = False
    cidr: str = "10.0.0.0/16"
    azs: int = 2
    availabilityZones: tuple[str, ...] = ()  # names to use; empty: the region's first `azs` available zones


# Every environment's private network is a /16 unless the stack says otherwise; staging and prod
# get one by default (docs/security.md, Network).
NETWORK_BY_DEFAULT = ("staging", "prod")
# AWS rule VPC-CIDR-SIZE: a VPC's IPv4 block is /16 to /28 and so is each subnet. The network
# splits its block into 16 equal subnets (one per zone used), so the block is at most a /24.
VPC_PREFIX_RANGE = (16, 24)
SUBNET_SPLIT_BITS = 4
VPC_CIDR_SOURCE = "https://docs.aws.amazon.com/vpc/latest/userguide/vpc-cidr-blocks.html"
MAX_NETWORK_AZS = 3  # every region in REGIONS has at least three zones


@dataclass(frozen=True)
class Suppression:
    rule: str
    resource: str
    reason: str
    expires: date


@dataclass(frozen=True)
class PolicyConfig:
    defaultEnforcement: str = "advisory"
    enforcement: dict[str, str] = field(default_factory=dict)
    suppressions: tuple[Suppression, ...] = ()


@dataclass(frozen=True)
class StackConfig:
    stack: str
    region: str
    environment: str
    models: tuple[str, ...]
    approvedPackages: dict[str, str]
    previousPackages: dict[str, tuple[str, ...]]
    training: TrainingConfig
    serving: ServingConfig
    gate: GateConfig
    promotion: dict[str, str]
    monitoring: MonitoringConfig
    retention: RetentionConfig
    tags: dict[str, str]
    github: GithubConfig
    vpc: VpcConfig
    policy: PolicyConfig
    endpoints: dict[str, str] = field(default_factory=dict)  # aws:endpoints overrides (local stack)
    network: NetworkConfig = field(default_factory=NetworkConfig)

    @property
    def private_network(self) -> bool:
        """Training and hosting run in a VPC: the stack's own network, or one the user brings."""
        return self.network.enabled or self.vpc.enabled

    @property
    def deployed_models(self) -> list[str]:
        """Models with an approved package: only these get an endpoint (and cost)."""
        return [m for m in self.models if self.approvedPackages.get(m)]


# --- loading -------------------------------------------------------------------------------


# A stack file is a page of settings. Bound what reading one may cost: PyYAML's SafeLoader
# expands aliases, so a 1.6 KB "billion laughs" file becomes a billion-element structure.
MAX_STACK_FILE_BYTES = 256 * 1024
MAX_YAML_ALIASES = 100
MAX_YAML_NODES = 100_000


class BoundedSafeLoader(yaml.SafeLoader):  # type: ignore[misc]  # PyYAML ships no types
    """SafeLoader that refuses a document with more than MAX_YAML_ALIASES alias uses, or one that
    would expand to more than MAX_YAML_NODES nodes; both counted on the composed graph, where
    aliases are still shared, before anything is expanded."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.aliases_seen = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            self.aliases_seen += 1
            if self.aliases_seen > MAX_YAML_ALIASES:
                raise yaml.YAMLError(f"more than {MAX_YAML_ALIASES} alias uses (*name); a stack file needs few or none")
        return super().compose_node(parent, index)

    def get_single_node(self) -> yaml.Node | None:
        node = super().get_single_node()
        if node is not None:
            expanded = _expanded_size(node, {})
            if expanded > MAX_YAML_NODES:
                raise yaml.YAMLError(f"its aliases expand to more than {MAX_YAML_NODES} nodes (an alias bomb); refused")
        return node


def _expanded_size(node: yaml.Node, seen: dict[int, int]) -> int:
    """How many nodes the document becomes once every alias is expanded (memoized per shared node)."""
    if id(node) in seen:
        return seen[id(node)]
    seen[id(node)] = MAX_YAML_NODES + 1  # a node reached again while inside itself: a cycle, refuse
    if isinstance(node, yaml.SequenceNode):
        total = 1 + sum(_expanded_size(child, seen) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        total = 1 + sum(_expanded_size(k, seen) + _expanded_size(v, seen) for k, v in node.value)
    else:
        total = 1
    seen[id(node)] = min(total, MAX_YAML_NODES + 1)
    return seen[id(node)]


def load_yaml_bounded(path: Path, max_bytes: int = MAX_STACK_FILE_BYTES) -> Any:
    """A YAML file's document, bounded in size, aliases and nodes; UTF-8 only. Raises ValueError
    with one line naming the file and the limit."""
    path = Path(path)
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"{path} is {size} bytes; a stack file may hold at most {max_bytes}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text (byte {err.start}: {data[err.start : err.start + 1]!r})") from None
    try:
        return yaml.load(text, Loader=BoundedSafeLoader)  # a SafeLoader subclass
    except yaml.YAMLError as err:
        raise ValueError(f"{path} is not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        raise ValueError(f"{path} nests too deeply to be a stack file") from None


def read_raw_config(stack: str | Path) -> tuple[str, dict[str, Any]]:
    """The `config:` mapping of a stack file, keys as written (`mlops:training`, `aws:region`)."""
    name, path = stack_name(stack), stack_path(stack)
    if not path.exists():
        raise ConfigError(name, [f"no stack file {path}; known stacks: {', '.join(known_stacks()) or 'none'}"])
    try:
        document = load_yaml_bounded(path) or {}
    except (ValueError, OSError) as err:
        raise ConfigError(name, [str(err)]) from None
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise ConfigError(name, [f"{path} has no 'config:' mapping"])
    return name, config


def load_stack_config(stack: str | Path, overrides: dict[str, Any] | None = None) -> StackConfig:
    """Read and validate a stack file; `overrides` replace top-level keys (`mlops:serving`)."""
    name, raw = read_raw_config(stack)
    raw = {**raw, **(overrides or {})}
    return parse_config(name, raw)


def to_pulumi_config(raw: dict[str, Any]) -> dict[str, str]:
    """Stack-file config in the form the Pulumi runtime holds it: strings, objects as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def from_pulumi_config(runtime_config: dict[str, str]) -> dict[str, Any]:
    """The inverse of `to_pulumi_config`, for the program reading config under the CLI or mocks."""
    out: dict[str, Any] = {}
    for key, value in runtime_config.items():
        try:
            decoded = json.loads(value)
            out[key] = decoded if isinstance(decoded, (dict, list)) else value
        except (TypeError, json.JSONDecodeError):
            out[key] = value
    return out


# --- validation ----------------------------------------------------------------------------

KNOWN_KEYS = {
    "environment",
    "models",
    "approvedPackages",
    "previousPackages",
    "training",
    "serving",
    "gate",
    "promotion",
    "monitoring",
    "retention",
    "tags",
    "github",
    "vpc",
    "network",
    "policy",
}


class _Checker:
    """Collects problems so a user sees every mistake in one run."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fail(self, key: str, value: Any, allowed: str, rule: str = "", source: str = "") -> None:
        """`key: value is not valid; allowed` and, for an AWS rule, its ID and source."""
        cited = f" (AWS rule {rule}, source: {source or aws_rules.URLS.get(rule, '')})" if rule else ""
        self.problems.append(f"{key}: {value!r} is not valid; {allowed}{cited}")

    def mapping(self, raw: Raw, key: str, fields_: dict[str, Any], required: bool = True) -> Raw:
        value = raw.get(f"{NAMESPACE}:{key}")
        if value is None:
            if required:
                self.problems.append(f"{NAMESPACE}:{key}: missing; expected a mapping with {', '.join(fields_)}")
            return {}
        return self.nested(f"{NAMESPACE}:{key}", value, fields_)

    def nested(self, key: str, value: Any, fields_: Iterable[str]) -> Raw:
        """A mapping inside the config: refuse other types and unknown keys, naming the allowed ones."""
        if not isinstance(value, dict):
            self.fail(key, value, f"expected a mapping with {', '.join(fields_)}")
            return {}
        for unknown in sorted(set(value) - set(fields_)):
            self.problems.append(f"{key}.{unknown}: unknown key; allowed: {', '.join(fields_)}")
        return value

    def choice(self, key: str, value: Any, allowed: tuple[Any, ...]) -> Any:
        if value not in allowed:
            self.fail(key, value, f"allowed: {', '.join(map(str, allowed))}")
        return value

    def integer(self, key: str, value: Any, low: int = 1, high: int | None = None) -> int:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and not _finite(value):
            self.fail(key, value, "expected a whole number, not NaN or infinity", "FINITE-NUMBERS")
            return low
        if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
            self.fail(key, value, "expected a whole number")
            return low
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            self.fail(key, value, f"expected {bound}")
        return int(value)

    def number(self, key: str, value: Any, low: float = 0.0, high: float | None = None, strict: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            self.fail(key, value, "expected a number")
            return low
        if not _finite(value):
            self.fail(key, value, "expected a finite number, not NaN or infinity", "FINITE-NUMBERS")
            return low
        if (value <= low if strict else value < low) or (high is not None and value > high):
            bound = f"{'over' if strict else 'at least'} {low}" + (f" and at most {high}" if high is not None else "")
            self.fail(key, value, f"expected a number {bound}")
        return float(value)

    def boolean(self, key: str, value: Any) -> bool:
        if not isinstance(value, bool):
            self.fail(key, value, "expected true or false")
            return False
        return value

    def string_list(self, key: str, value: Any, pattern: re.Pattern[str] | None = None) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(key, value, "expected a list of strings")
            return ()
        for i, v in enumerate(value):
            if pattern and not pattern.match(v):
                self.fail(f"{key}[{i}]", v, f"expected to match {pattern.pattern}")
        return tuple(value)


def _finite(value: int | float) -> bool:
    return not (isinstance(value, float) and (math.isnan(value) or math.isinf(value)))


def parse_config(stack: str, raw: dict[str, Any]) -> StackConfig:
    """Validate the whole stack config; raise one ConfigError listing every problem."""
    c = _Checker()
    ns = f"{NAMESPACE}:"
    for key in sorted(raw):
        if key.startswith(ns) and key[len(ns) :] not in KNOWN_KEYS:
            c.problems.append(f"{key}: unknown key; allowed: {', '.join(ns + k for k in sorted(KNOWN_KEYS))}")
        elif ":" not in key:
            c.problems.append(f"{key}: keys must be namespaced, e.g. {ns}{key} or aws:{key}")

    region = c.choice("aws:region", raw.get("aws:region"), REGIONS)
    env = c.choice(f"{ns}environment", raw.get(f"{ns}environment"), ENVIRONMENTS)
    tier = env if env in ENVIRONMENTS else "dev"

    models = _models(c, stack, raw.get(f"{ns}models", []))

    approved = _approved_packages(c, raw.get(f"{ns}approvedPackages", {}), models)
    previous = _previous_packages(c, raw.get(f"{ns}previousPackages", {}), models)
    training = _training(c, raw, tier)
    serving = _serving(c, raw, tier)
    gate = _gate(c, raw)
    promotion = _promotion(c, raw, env)
    monitoring = _monitoring(c, raw, tier)
    retention = _retention(c, raw)
    tags = _tags(c, raw)
    github = _github(c, raw)
    vpc = _vpc(c, raw)
    network = _network(c, raw, tier, vpc)
    policy = _policy(c, raw)
    endpoints = _endpoints(c, raw, tier)

    if c.problems:
        raise ConfigError(stack, c.problems)
    return StackConfig(
        stack=stack,
        region=region,
        environment=env,
        models=models,
        approvedPackages=approved,
        previousPackages=previous,
        training=training,
        serving=serving,
        gate=gate,
        promotion=promotion,
        monitoring=monitoring,
        retention=retention,
        tags=tags,
        github=github,
        vpc=vpc,
        policy=policy,
        endpoints=endpoints,
        network=network,
    )


def _models(c: _Checker, stack: str, value: Any) -> tuple[str, ...]:
    """Model names, and the stack name with them: each feeds many physical names (kernel.names)."""
    key = f"{NAMESPACE}:models"
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        c.fail(key, value, "expected a list of model names, e.g. [churn]")
        return ()
    if not value:
        c.problems.append(f"{key}: at least one model name is required, e.g. [churn]")
    for i, model in enumerate(value):
        if not MODEL_NAME.match(model):
            c.fail(f"{key}[{i}]", model, f"model names are {names.NAME_WORDS_ALLOWED}", "NAME-LENGTHS")
        elif value.index(model) != i:
            c.fail(f"{key}[{i}]", model, f"duplicate of {key}[{value.index(model)}]: name each model once")
    if not names.NAME_WORDS.fullmatch(stack):
        c.fail(
            "stack", stack, f"stack names are {names.NAME_WORDS_ALLOWED} (they prefix every resource)", "NAME-LENGTHS"
        )
        return tuple(value)
    valid = [m for m in value if MODEL_NAME.match(m)]
    for problem in names.derived_name_problems(stack, valid):
        model = problem.derived.model
        where, what = (f"{key}[{value.index(model)}]", model) if model else ("stack", stack)
        c.fail(where, what, problem.allowed, "NAME-LENGTHS", problem.source)
    return tuple(value)


def _approved_packages(c: _Checker, value: Any, models: tuple[str, ...]) -> dict[str, str]:
    key = f"{NAMESPACE}:approvedPackages"
    if not isinstance(value, dict):
        c.fail(key, value, "expected a mapping of model name to model package ARN ('' when none)")
        return {}
    out = {}
    for model, arn in value.items():
        if model not in models:
            c.problems.append(f"{key}.{model}: not a model of this stack; models: {', '.join(models)}")
        if arn in ("", None):
            out[model] = ""
        elif not isinstance(arn, str) or not PACKAGE_ARN.match(arn):
            c.fail(
                f"{key}.{model}",
                arn,
                "expected a versioned model package ARN like "
                "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-dev/3, or ''",
            )
        else:
            out[model] = arn
    return {m: out.get(m, "") for m in models} | {m: a for m, a in out.items() if m not in models}


def _previous_packages(c: _Checker, value: Any, models: tuple[str, ...]) -> dict[str, tuple[str, ...]]:
    key = f"{NAMESPACE}:previousPackages"
    if not isinstance(value, dict):
        c.fail(key, value, "expected a mapping of model name to a list of model package ARNs")
        return {}
    return {model: c.string_list(f"{key}.{model}", arns, PACKAGE_ARN) for model, arns in value.items()}


def _training(c: _Checker, raw: Raw, tier: str) -> TrainingConfig:
    key = f"{NAMESPACE}:training"
    t = c.mapping(
        raw,
        "training",
        {"allowedInstanceTypes": 0, "defaultInstanceType": 0, "spot": 0, "maxRuntimeSeconds": 0, "maxWaitSeconds": 0},
    )
    allowed = c.string_list(f"{key}.allowedInstanceTypes", t.get("allowedInstanceTypes", []))
    if not allowed:
        c.problems.append(f"{key}.allowedInstanceTypes: at least one GPU instance type is required")
    ceiling = TIER_TRAINING_TYPES[tier]
    for i, itype in enumerate(allowed):
        if itype not in GPU_TRAINING_TYPES:
            c.fail(
                f"{key}.allowedInstanceTypes[{i}]",
                itype,
                f"not a supported GPU training instance type; supported: {', '.join(GPU_TRAINING_TYPES)}",
            )
        elif itype not in ceiling:
            c.fail(
                f"{key}.allowedInstanceTypes[{i}]",
                itype,
                f"GPU type not allowed in a {tier} environment; allowed there: {', '.join(ceiling)}",
            )
    default = t.get("defaultInstanceType")
    if default not in allowed:
        c.fail(f"{key}.defaultInstanceType", default, f"must be one of allowedInstanceTypes: {', '.join(allowed)}")
    spot = c.boolean(f"{key}.spot", t.get("spot"))
    runtime = c.integer(f"{key}.maxRuntimeSeconds", t.get("maxRuntimeSeconds"), 60, 28 * 24 * 3600)
    wait = c.integer(f"{key}.maxWaitSeconds", t.get("maxWaitSeconds", runtime), 60, 28 * 24 * 3600)
    if spot and wait < runtime:
        c.fail(f"{key}.maxWaitSeconds", wait, f"with spot on it must be at least maxRuntimeSeconds ({runtime})")
    return TrainingConfig(allowed, str(default), spot, runtime, wait)


def _serving(c: _Checker, raw: Raw, tier: str) -> ServingConfig:
    key = f"{NAMESPACE}:serving"
    s = c.mapping(
        raw,
        "serving",
        {
            "mode": 0,
            "instanceType": 0,
            "initialInstanceCount": 0,
            "serverlessMemoryMb": 0,
            "serverlessMaxConcurrency": 0,
            "autoscaling": 0,
            "rollout": 0,
            "dataCaptureSamplingPercent": 0,
        },
    )
    mode = c.choice(f"{key}.mode", s.get("mode"), SERVING_MODES)
    itype = s.get("instanceType", "ml.m5.large")
    c.choice(f"{key}.instanceType", itype, HOSTING_TYPES)
    count = c.integer(f"{key}.initialInstanceCount", s.get("initialInstanceCount", 1), 1, 100)
    memory = s.get("serverlessMemoryMb", 2048)
    memory_limits = member_limits(
        "sagemaker", "CreateEndpointConfig", "ProductionVariants[].ServerlessConfig.MemorySizeInMB"
    )
    c.choice(
        f"{key}.serverlessMemoryMb",
        memory,
        tuple(range(memory_limits["min"], memory_limits["max"] + 1, SERVERLESS_MEMORY_STEP_MB)),
    )
    concurrency_limits = member_limits(
        "sagemaker", "CreateEndpointConfig", "ProductionVariants[].ServerlessConfig.MaxConcurrency"
    )
    concurrency = c.integer(
        f"{key}.serverlessMaxConcurrency",
        s.get("serverlessMaxConcurrency", 5),
        concurrency_limits["min"],
        concurrency_limits["max"],
    )

    a = c.nested(
        f"{key}.autoscaling", s.get("autoscaling", {}), ("minCapacity", "maxCapacity", "targetInvocationsPerInstance")
    )
    lo = c.integer(f"{key}.autoscaling.minCapacity", a.get("minCapacity", count), 1, 100)
    hi = c.integer(f"{key}.autoscaling.maxCapacity", a.get("maxCapacity", count), 1, 100)
    if hi < lo:
        c.fail(f"{key}.autoscaling.maxCapacity", hi, f"must be at least minCapacity ({lo})")
    target = c.integer(f"{key}.autoscaling.targetInvocationsPerInstance", a.get("targetInvocationsPerInstance", 100), 1)

    r = c.nested(f"{key}.rollout", s.get("rollout", {"type": "all_at_once"}), ("type", "stepPercent", "bakeSeconds"))
    rtype = c.choice(f"{key}.rollout.type", r.get("type"), ROLLOUT_TYPES)
    step = c.integer(f"{key}.rollout.stepPercent", r.get("stepPercent", 100), 1, 100)
    wait_limits = member_limits(
        "sagemaker", "CreateEndpoint", f"{BLUE_GREEN}.TrafficRoutingConfiguration.WaitIntervalInSeconds"
    )
    bake = c.integer(f"{key}.rollout.bakeSeconds", r.get("bakeSeconds", 300), wait_limits["min"], wait_limits["max"])
    capture = c.integer(f"{key}.dataCaptureSamplingPercent", s.get("dataCaptureSamplingPercent", 0), 0, 100)
    if mode == "instance":
        _blue_green(c, f"{key}.rollout", rtype, step, bake)

    if mode == "serverless":
        if rtype in ("canary", "linear"):
            c.fail(
                f"{key}.rollout.type",
                rtype,
                "serverless endpoints support only all_at_once; use mode: instance for canary/linear",
                "SERVERLESS-EXCLUSIONS",
            )
        if capture:
            c.fail(
                f"{key}.dataCaptureSamplingPercent",
                capture,
                "serverless endpoints cannot capture data; use 0 or mode: instance",
                "SERVERLESS-EXCLUSIONS",
            )
    if tier == "prod":
        if mode != "instance":
            c.fail(f"{key}.mode", mode, "prod serves from instances (mode: instance), for capture and safe rollout")
        if rtype == "all_at_once":
            c.fail(f"{key}.rollout.type", rtype, "prod rolls out with canary or linear traffic shifting")
        if capture == 0:
            c.fail(f"{key}.dataCaptureSamplingPercent", capture, "prod must capture data (1-100) for drift monitoring")
    if tier == "dev" and mode == "instance":
        c.fail(f"{key}.mode", mode, "dev must not bill by the hour when idle: use mode: serverless")
    return ServingConfig(
        mode,
        itype,
        count,
        memory,
        concurrency,
        AutoscalingConfig(lo, hi, target),
        RolloutConfig(rtype, step, bake),
        capture,
    )


BLUE_GREEN = "DeploymentConfig.BlueGreenUpdatePolicy"


def _blue_green(c: _Checker, key: str, rtype: str, step: int, bake: int) -> None:
    """What SageMaker and the provider allow of a blue/green rollout (kernel.aws_rules)."""
    if rtype == "canary" and step > aws_rules.CANARY_MAX_PERCENT:
        c.fail(
            f"{key}.stepPercent",
            step,
            f"a canary is at most {aws_rules.CANARY_MAX_PERCENT}% of the fleet: use 1-{aws_rules.CANARY_MAX_PERCENT}",
            "BLUEGREEN-CANARY",
        )
    low, high = aws_rules.LINEAR_STEP_PERCENT
    if rtype == "linear" and not low <= step <= high:
        c.fail(f"{key}.stepPercent", step, f"each linear step is {low}-{high}% of the fleet", "BLUEGREEN-LINEAR")
    # The program waits bakeSeconds after each traffic step and again before retiring the old fleet.
    routing = {
        "Type": rtype.upper(),
        "WaitIntervalInSeconds": bake,
        "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": step} if rtype == "linear" else None,
    }
    baking = aws_rules.rollout_seconds(routing, bake)
    if baking >= aws_rules.PROVIDER_ENDPOINT_WAIT_SECONDS:
        c.fail(
            f"{key}.bakeSeconds",
            bake,
            f"this {rtype} rollout bakes {baking} s in all; the provider waits at most "
            f"{aws_rules.PROVIDER_ENDPOINT_WAIT_SECONDS} s for the endpoint, then fails while SageMaker carries on",
            "BLUEGREEN-WAITS",
            aws_rules.PROVIDER_WAITER_SOURCE,
        )


def _gate(c: _Checker, raw: Raw) -> GateConfig:
    key = f"{NAMESPACE}:gate"
    g = c.mapping(raw, "gate", {"metric": 0, "minImprovement": 0, "minimums": 0})
    metric = c.choice(f"{key}.metric", g.get("metric", "roc_auc"), GATE_METRICS)
    margin = c.number(f"{key}.minImprovement", g.get("minImprovement", 0.0), 0.0, 1.0)
    minimums = g.get("minimums", {})
    if not isinstance(minimums, dict):
        c.fail(f"{key}.minimums", minimums, "expected a mapping of metric to minimum value")
        minimums = {}
    for m, v in minimums.items():
        c.choice(f"{key}.minimums.{m}", m, GATE_METRICS)
        # scores and rates live in [0, 1] (R² at most 1); errors and losses are only bounded below
        c.number(f"{key}.minimums.{m}", v, 0.0, 1.0 if m in UNIT_INTERVAL_METRICS else None)
    return GateConfig(metric, margin, {m: float(v) for m, v in minimums.items() if isinstance(v, (int, float))})


def _promotion(c: _Checker, raw: Raw, env: str) -> dict[str, str]:
    key = f"{NAMESPACE}:promotion"
    p = c.mapping(raw, "promotion", {"requireLiveIn": 0}, required=False)
    live_in = p.get("requireLiveIn", "")
    if live_in:
        c.choice(f"{key}.requireLiveIn", live_in, tuple(e for e in ENVIRONMENTS if e != env))
    if env == "prod" and live_in != "staging":
        c.fail(f"{key}.requireLiveIn", live_in, "prod requires packages to have been live in staging: use 'staging'")
    return {"requireLiveIn": live_in or ""}


def _monitoring(c: _Checker, raw: Raw, tier: str) -> MonitoringConfig:
    key = f"{NAMESPACE}:monitoring"
    m = c.mapping(
        raw,
        "monitoring",
        {"alertEmail": 0, "latencyP99Ms": 0, "error5xxThreshold": 0, "driftThreshold": 0, "monthlyBudgetUsd": 0},
    )
    email = m.get("alertEmail", "")
    if email and (not isinstance(email, str) or not EMAIL.match(email)):
        c.fail(f"{key}.alertEmail", email, "expected an e-mail address")
    if not email and tier in ("staging", "prod"):
        c.problems.append(f"{key}.alertEmail: missing; {tier} must page a person: give an e-mail address")
    latency = c.integer(f"{key}.latencyP99Ms", m.get("latencyP99Ms", 500), 1, 60_000)
    errors = c.integer(f"{key}.error5xxThreshold", m.get("error5xxThreshold", 5), 1)
    # 0.2: ml.drift.DEFAULT_THRESHOLD (kernel may not import ml; tests/kernel/test_facts_held_equal.py)
    drift = c.number(f"{key}.driftThreshold", m.get("driftThreshold", 0.2), 0.0, 10.0, strict=True)
    budget = c.number(f"{key}.monthlyBudgetUsd", m.get("monthlyBudgetUsd"), 0.0, strict=True)
    return MonitoringConfig(email or "", latency, errors, drift, budget)


def _retention(c: _Checker, raw: Raw) -> RetentionConfig:
    key = f"{NAMESPACE}:retention"
    r = c.mapping(raw, "retention", {"logDays": 0, "artifactDays": 0, "captureDays": 0})
    log_days = r.get("logDays", 30)
    # CloudWatch Logs accepts only these retention periods.
    c.choice(
        f"{key}.logDays",
        log_days,
        (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653),
    )
    return RetentionConfig(
        int(log_days) if isinstance(log_days, int) else 30,
        c.integer(f"{key}.artifactDays", r.get("artifactDays", 365), 1),
        c.integer(f"{key}.captureDays", r.get("captureDays", 90), 1),
    )


def _tags(c: _Checker, raw: Raw) -> dict[str, str]:
    key = f"{NAMESPACE}:tags"
    tags = raw.get(key, {})
    if not isinstance(tags, dict):
        c.fail(key, tags, "expected a mapping of tag key to value")
        return {}
    for k, v in tags.items():
        if not TAG_KEY.match(str(k)) or str(k).lower().startswith("aws:"):
            c.fail(
                f"{key}.{k}", k, "tag keys are 1-128 letters, digits, spaces or _.:/=+-@ and may not start with aws:"
            )
        if not isinstance(v, str) or len(v) > 256:
            c.fail(f"{key}.{k}", v, "tag values are strings of at most 256 characters")
    for required in ("owner", "cost-center"):
        if required not in tags:
            c.problems.append(f"{key}.{required}: missing; every stack tags its resources with owner and cost-center")
    return {str(k): str(v) for k, v in tags.items()}


def _github(c: _Checker, raw: Raw) -> GithubConfig:
    key = f"{NAMESPACE}:github"
    g = c.mapping(raw, "github", {"repository": 0, "environment": 0, "defaultBranch": 0, "manageOidcProvider": 0})
    repo = g.get("repository", "")
    if not isinstance(repo, str) or not GITHUB_REPO.match(repo):
        c.fail(f"{key}.repository", repo, "expected owner/name of the GitHub repository CI runs in")
    environment = g.get("environment", "")
    if not isinstance(environment, str) or not environment:
        c.fail(f"{key}.environment", environment, "expected the GitHub environment name that deploys this stack")
    if "manageOidcProvider" in g:
        c.fail(
            f"{key}.manageOidcProvider",
            g["manageOidcProvider"],
            "no stack manages the GitHub OIDC provider any more: the account's bootstrap program does "
            "(infra/bootstrap); remove the key",
        )
    branch = g.get("defaultBranch", "main")
    if not isinstance(branch, str) or not re.fullmatch(r"[A-Za-z0-9._/-]{1,255}", branch) or branch.startswith("/"):
        c.fail(f"{key}.defaultBranch", branch, "expected a branch name such as main (no wildcards)")
    return GithubConfig(str(repo), str(environment), str(branch))


def _vpc(c: _Checker, raw: Raw) -> VpcConfig:
    key = f"{NAMESPACE}:vpc"
    v = c.mapping(raw, "vpc", {"subnetIds": 0, "securityGroupIds": 0}, required=False)
    subnets = c.string_list(f"{key}.subnetIds", v.get("subnetIds", []), re.compile(r"^subnet-[0-9a-f]{8,17}$"))
    groups = c.string_list(f"{key}.securityGroupIds", v.get("securityGroupIds", []), re.compile(r"^sg-[0-9a-f]{8,17}$"))
    if bool(subnets) != bool(groups):
        c.problems.append(f"{key}: give both subnetIds and securityGroupIds, or neither")
    return VpcConfig(subnets, groups)


def _network(c: _Checker, raw: Raw, tier: str, vpc: VpcConfig) -> NetworkConfig:
    """The stack's own private network; on by default in staging and prod, unless a VPC is brought."""
    key = f"{NAMESPACE}:network"
    n = c.mapping(raw, "network", {"enabled": 0, "cidr": 0, "azs": 0, "availabilityZones": 0}, required=False)
    default_on = tier in NETWORK_BY_DEFAULT and not vpc.enabled
    enabled = c.boolean(f"{key}.enabled", n.get("enabled", default_on))
    cidr = n.get("cidr", NetworkConfig.cidr)
    _cidr(c, f"{key}.cidr", cidr)
    azs = c.integer(f"{key}.azs", n.get("azs", NetworkConfig.azs), 2, MAX_NETWORK_AZS)
    zones = c.string_list(f"{key}.availabilityZones", n.get("availabilityZones", []))
    region = raw.get("aws:region")
    for i, zone in enumerate(zones):
        if isinstance(region, str) and not re.fullmatch(rf"{re.escape(region)}[a-z]", zone):
            c.fail(f"{key}.availabilityZones[{i}]", zone, f"expected a zone of {region}, e.g. {region}a")
    if zones and (len(set(zones)) != len(zones) or len(zones) != azs):
        c.fail(f"{key}.availabilityZones", list(zones), f"name {azs} distinct zones (azs), one subnet each")
    if enabled and vpc.enabled:
        c.problems.append(
            f"{key}.enabled: true while {NAMESPACE}:vpc brings subnetIds; use one: the stack's own network "
            f"or your VPC, not both"
        )
    if enabled and tier == "local":
        c.fail(f"{key}.enabled", True, "the local stack runs against an emulator on loopback: no network")
    return NetworkConfig(enabled, str(cidr), azs, zones)


def _cidr(c: _Checker, key: str, value: Any) -> None:
    """A private IPv4 block AWS accepts for a VPC (AWS rule VPC-CIDR-SIZE)."""
    try:
        block = ipaddress.IPv4Network(value, strict=True) if isinstance(value, str) else None
    except ValueError:
        block = None
    if block is None:
        c.fail(key, value, "expected an IPv4 network in CIDR form with no host bits, e.g. 10.20.0.0/16")
        return
    low, high = VPC_PREFIX_RANGE
    if not low <= block.prefixlen <= high:
        c.fail(
            key,
            value,
            f"a VPC block is /16 to /28 and the network splits it into {2**SUBNET_SPLIT_BITS} subnets: "
            f"use /{low} to /{high}",
            "VPC-CIDR-SIZE",
            VPC_CIDR_SOURCE,
        )
    if not any(block.subnet_of(ipaddress.IPv4Network(p)) for p in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")):
        c.fail(key, value, "use a private (RFC 1918) block: 10.0.0.0/8, 172.16.0.0/12 or 192.168.0.0/16")


def _policy(c: _Checker, raw: Raw) -> PolicyConfig:
    key = f"{NAMESPACE}:policy"
    p = c.mapping(raw, "policy", {"defaultEnforcement": 0, "enforcement": 0, "suppressions": 0}, required=False)
    default = c.choice(f"{key}.defaultEnforcement", p.get("defaultEnforcement", "advisory"), ENFORCEMENT_LEVELS[:2])
    levels = p.get("enforcement", {})
    if not isinstance(levels, dict):
        c.fail(f"{key}.enforcement", levels, "expected a mapping of rule id to advisory, mandatory or disabled")
        levels = {}
    for rule, level in levels.items():
        c.choice(f"{key}.enforcement.{rule}", level, ENFORCEMENT_LEVELS)
    suppressions = []
    entries = p.get("suppressions", [])
    if not isinstance(entries, list):
        c.fail(f"{key}.suppressions", entries, "expected a list of {rule, resource, reason, expires}")
        entries = []
    for i, s in enumerate(entries):
        where = f"{key}.suppressions[{i}]"
        if not isinstance(s, dict) or set(s) != {"rule", "resource", "reason", "expires"}:
            c.fail(where, s, "each suppression has exactly rule, resource, reason and expires (YYYY-MM-DD)")
            continue
        try:
            expires = s["expires"] if isinstance(s["expires"], date) else date.fromisoformat(str(s["expires"]))
        except ValueError:
            c.fail(f"{where}.expires", s["expires"], "expected a date YYYY-MM-DD")
            continue
        if not str(s["reason"]).strip():
            c.fail(f"{where}.reason", s["reason"], "say why the rule does not apply")
        suppressions.append(Suppression(str(s["rule"]), str(s["resource"]), str(s["reason"]), expires))
    return PolicyConfig(default, dict(levels), tuple(suppressions))


def _endpoints(c: _Checker, raw: Raw, tier: str) -> dict[str, str]:
    """`aws:endpoints` (the provider's custom endpoints): only the local stack, only loopback."""
    value = raw.get("aws:endpoints")
    if value is None:
        return {}
    if tier != "local":
        c.fail("aws:endpoints", value, "custom endpoints are for the local stack only")
        return {}
    entries = value if isinstance(value, list) else [value]
    out: dict[str, str] = {}
    for entry in entries:
        if not isinstance(entry, dict):
            c.fail("aws:endpoints", entry, "expected a list of {service: url}")
            continue
        for service, url in entry.items():
            if not isinstance(url, str) or not re.match(r"^https?://(127\.0\.0\.1|localhost)(:\d+)?/?$", url):
                c.fail(
                    f"aws:endpoints.{service}",
                    url,
                    "the local stack talks only to an emulator on loopback (http://127.0.0.1:PORT)",
                )
            out[service] = str(url)
    return out
