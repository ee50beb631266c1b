"""SageMaker: encrypted and captured endpoints, isolated models, bounded training, watched rollouts.

No public policy pack has rules for these; they encode what the AWS samples get wrong most
often: alarms missing the VariantName dimension (so they never fire), FullAccess roles,
unencrypted capture, unbounded GPU training.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kernel.aws_model import UNKNOWN
from kernel.instances import accepts_volume_kms_key
from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import StackGraph, listify, number, truthy
from policies.records import Resource
from policies.rules.base import Collected, Finding, RuleFamily, say
from policies.rules.iam import IDENTITY_POLICY_TYPES, TRAINING_ACTIONS, identity_statements
from policies.sagemaker_graph import (
    ENDPOINT,
    ENDPOINT_CONFIG,
    MODEL,
    PACKAGE_GROUP,
    PACKAGE_GROUP_POLICY,
    alarm_metrics,
    alarm_name,
    config_of,
    is_serverless,
    models_served_only_serverless,
    physical_name,
    variants,
)

SAGEMAKER = RuleFamily("sagemaker")

ERROR_METRICS = ("Invocation5XXErrors",)
LATENCY_METRICS = ("ModelLatency", "OverheadLatency")
MAX_RUNTIME_CEILING = 28 * 24 * 3600  # SageMaker's own limit


# --- endpoints -----------------------------------------------------------------------------


def _takes_volume_key(variant: Mapping[str, Any]) -> bool:
    """Instance types with local NVMe storage refuse a volume key (kernel.instances, INSTANCE-STORAGE)."""
    instance_type = variant.get("instanceType")
    if not isinstance(instance_type, str):
        return True
    try:
        return accepts_volume_kms_key(instance_type)
    except ValueError:
        return True


@SAGEMAKER.resource(
    "sagemaker-endpoint-config-kms",
    severity="high",
    types=(ENDPOINT_CONFIG,),
    blind_spots=("kmsKeyArn", "dataCaptureConfig"),
)
def sagemaker_endpoint_config_kms(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Endpoint configurations encrypt instance storage and captured data with KMS.

    Why: Instance-backed endpoints keep the model and request payloads on ML storage volumes; captured requests are
    customer data. Without kms_key_arn / kms_key_id they fall back to AWS-owned keys nobody can audit.

    Fix: set kms_key_arn on aws.sagemaker.EndpointConfiguration (instance variants) and kms_key_id in
    data_capture_config. Serverless variants and instance types with local NVMe storage (g4dn, g5, g6...) take no volume
    key and are exempt (AWS rule INSTANCE-STORAGE,
    https://docs.aws.amazon.com/sagemaker/latest/dg/host-instance-storage.html); captured data still needs one.
    """
    instance = [v for v in variants(resource) if not is_serverless(v) and _takes_volume_key(v)]
    if instance and not resource.props.get("kmsKeyArn"):
        yield say(
            resource,
            f"instance variant(s) {', '.join(str(v.get('variantName', '?')) for v in instance)} "
            "have no KMS key for their storage volumes",
            "set kms_key_arn to the environment key",
        )
    for capture in listify(resource.props.get("dataCaptureConfig")):
        if isinstance(capture, Mapping) and truthy(capture.get("enableCapture", False)) and not capture.get("kmsKeyId"):
            yield say(
                resource,
                "captures requests and responses without a KMS key",
                "set data_capture_config.kms_key_id to the environment key",
            )
    for async_config in listify(resource.props.get("asyncInferenceConfig")):
        output = async_config.get("outputConfig") if isinstance(async_config, Mapping) else None
        for o in listify(output):
            if isinstance(o, Mapping) and not o.get("kmsKeyId"):
                yield say(
                    resource,
                    "writes asynchronous inference results without a KMS key",
                    "set async_inference_config.output_config.kms_key_id",
                )


@SAGEMAKER.resource(
    "sagemaker-endpoint-data-capture", severity="medium", types=(ENDPOINT_CONFIG,), environments=("staging", "prod")
)
def sagemaker_endpoint_data_capture(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Endpoints in staging and prod capture requests and responses.

    Why: Drift detection and incident forensics read captured traffic; an endpoint that captures nothing in prod cannot
    tell when its model stopped matching the world.

    Fix: serve from instances (serving.mode: instance) with serving.dataCaptureSamplingPercent > 0, capture Input and
    Output to the capture bucket. Serverless endpoints outside prod are exempt: AWS refuses data capture on them (AWS
    rule SERVERLESS-EXCLUSIONS).
    """
    captures = [c for c in listify(resource.props.get("dataCaptureConfig")) if isinstance(c, Mapping)]
    enabled = [c for c in captures if truthy(c.get("enableCapture", False))]
    serverless = bool(variants(resource)) and all(is_serverless(v) for v in variants(resource))
    if serverless and ctx.environment != "prod":
        return  # AWS refuses capture on serverless (SERVERLESS-EXCLUSIONS); only prod must serve from instances
    if not enabled:
        hint = (
            "serverless endpoints cannot capture: use serving.mode instance"
            if serverless
            else "add data_capture_config with enable_capture=True"
        )
        yield say(resource, f"captures no traffic in {ctx.environment}", hint)
        return
    for c in enabled:
        percent = number(c.get("initialSamplingPercentage"))
        if percent is not None and percent <= 0:
            yield say(resource, "samples 0% of traffic", "set initial_sampling_percentage between 1 and 100")
        if not c.get("destinationS3Uri"):
            yield say(resource, "captures without a destination", "set destination_s3_uri to the capture bucket")


def _s3_bucket_of(uri: Any) -> str | None:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        return None
    return uri.removeprefix("s3://").split("/", 1)[0] or None


def stack_bucket_names(graph: StackGraph) -> set[str]:
    """The physical names of the buckets this stack declares (and the bucket names it exports)."""
    names = {b.props.get("bucket") or b.id for b in graph.of_type("aws:s3/bucket:Bucket")}
    names |= {v for k, v in graph.outputs.items() if k.endswith("Bucket")}
    return {n for n in names if isinstance(n, str) and n}


def _bucket_names_unknown(graph: StackGraph) -> bool:
    """During a preview a new bucket's name may be unknown: then no destination can be called foreign."""
    return any(b.props.get("bucket") is UNKNOWN and not b.id for b in graph.of_type("aws:s3/bucket:Bucket"))


@SAGEMAKER.stack(
    "sagemaker-capture-in-stack",
    severity="high",
    blind_spots=(
        (ENDPOINT_CONFIG, "dataCaptureConfig"),
        (ENDPOINT_CONFIG, "asyncInferenceConfig"),
    ),
)
def sagemaker_capture_in_stack(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Endpoints capture requests (and write asynchronous results) only to buckets of their own stack.

    Why: Captured requests are customer data: written to a bucket this stack does not own (another environment's,
    another team's or another account's) they escape its key, its lifecycle, its public access block and its access
    logs.

    Fix: set data_capture_config.destination_s3_uri to s3://<the stack's capture bucket>/<model> (the captureBucket
    output).
    """
    own = stack_bucket_names(graph)
    if not own or _bucket_names_unknown(graph):
        return []
    out = Collected()
    for config in graph.of_type(ENDPOINT_CONFIG):
        destinations = [
            ("captures requests", c.get("destinationS3Uri"))
            for c in listify(config.props.get("dataCaptureConfig"))
            if isinstance(c, Mapping) and truthy(c.get("enableCapture", False))
        ]
        for async_config in listify(config.props.get("asyncInferenceConfig")):
            for o in listify(async_config.get("outputConfig") if isinstance(async_config, Mapping) else None):
                if isinstance(o, Mapping):
                    destinations += [
                        ("writes asynchronous results", o.get(k)) for k in ("s3OutputPath", "s3FailurePath")
                    ]
        for what, uri in destinations:
            bucket = _s3_bucket_of(uri)
            if bucket is not None and bucket not in own:
                out.flag(
                    config,
                    f"{what} to {uri}, a bucket this stack does not own",
                    "write to the stack's capture bucket (captureBucket output)",
                )
    return out.items


@SAGEMAKER.resource(
    "sagemaker-model-network-isolation", severity="high", types=(MODEL,), blind_spots=("enableNetworkIsolation",)
)
def sagemaker_model_network_isolation(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """SageMaker models run with network isolation.

    Why: A model container with network access can send the requests it serves (customer data) anywhere; isolation
    leaves it only the model artifact and the invocation.

    Fix: set enable_network_isolation=True on aws.sagemaker.Model. Models served only by serverless variants are exempt:
    AWS refuses network isolation on serverless endpoints (AWS rule SERVERLESS-EXCLUSIONS,
    https://docs.aws.amazon.com/sagemaker/latest/dg/serverless-endpoints.html).
    """
    if truthy(resource.props.get("enableNetworkIsolation", False)) or models_served_only_serverless(resource, graph):
        return
    yield say(resource, "runs without network isolation", "set enable_network_isolation=True")


def _vpc_ok(vpc: Any) -> bool:
    for block in listify(vpc):
        if block is UNKNOWN:
            return True
        if isinstance(block, Mapping) and listify(block.get("subnets")) and listify(block.get("securityGroupIds")):
            return True
    return False


@SAGEMAKER.stack("sagemaker-model-vpc", severity="medium", needs=("has_vpc",))
def sagemaker_model_vpc(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Where the environment has a VPC, SageMaker models run inside it.

    Why: Instance endpoints outside the VPC reach S3 and ECR over public endpoints and bypass the VPC's flow logs,
    endpoints policies and egress controls.

    Fix: set vpc_config (subnets, security_group_ids) on aws.sagemaker.Model from the stack's vpc config. Models served
    only by serverless variants are exempt (serverless takes no VPC).
    """
    if not ctx.has_vpc:
        return []
    return [
        (m, say(m, "runs outside the environment's VPC", "set vpc_config with the stack's subnets and security groups"))
        for m in graph.of_type(MODEL)
        if not _vpc_ok(m.props.get("vpcConfig")) and not models_served_only_serverless(m, graph)
    ]


def _endpoint_alarm_findings(graph: StackGraph, metrics: tuple[str, ...], what: str) -> list[Finding]:
    out = Collected()
    watched = alarm_metrics(graph)
    for endpoint in graph.of_type(ENDPOINT):
        name = physical_name(endpoint)
        if not name or endpoint.props.get("name") is UNKNOWN:
            continue
        config = config_of(endpoint, graph)
        variant_names = {str(v.get("variantName")) for v in variants(config)} if config is not None else set()
        candidates = [m for m in watched if m.namespace == "AWS/SageMaker" and m.metric in metrics]
        on_endpoint = [m for m in candidates if m.dimensions.get("EndpointName") in (name, UNKNOWN)]
        good = [
            m
            for m in on_endpoint
            if m.dimensions.get("VariantName") is UNKNOWN
            or (
                m.dimensions.get("VariantName") is not None
                and (not variant_names or str(m.dimensions.get("VariantName")) in variant_names)
            )
        ]
        if good:
            continue
        if on_endpoint:
            m = on_endpoint[0]
            variant = m.dimensions.get("VariantName")
            problem = (
                f"alarm {alarm_name(m.alarm)} watches {m.metric} without the VariantName dimension; SageMaker "
                "publishes it per EndpointName and VariantName, so the alarm never fires"
                if variant is None
                else f"alarm {alarm_name(m.alarm)} watches variant '{variant}', which endpoint {name} does not have "
                f"(variants: {', '.join(sorted(variant_names)) or 'unknown'})"
            )
            out.flag(
                endpoint, problem, "set dimensions {EndpointName: <endpoint>, VariantName: <variant>} on the alarm"
            )
        else:
            out.flag(
                endpoint,
                f"endpoint {name} has no {what} alarm (AWS/SageMaker {' or '.join(metrics)} with EndpointName={name})",
                f"declare an aws.cloudwatch.MetricAlarm on {metrics[0]} with the endpoint's "
                "EndpointName and VariantName dimensions and an alarm action",
            )
    return out.items


@SAGEMAKER.stack("sagemaker-endpoint-5xx-alarm", severity="high")
def sagemaker_endpoint_5xx_alarm(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Every endpoint has a 5xx-error alarm whose dimensions match it.

    Why: Model container errors are invisible to clients' retries until someone looks; an alarm with the wrong
    dimensions (the common bug: no VariantName) watches a metric that does not exist and never fires.

    Fix: declare MetricAlarm(namespace='AWS/SageMaker', metric_name='Invocation5XXErrors', dimensions={'EndpointName':
    ..., 'VariantName': ...}, alarm_actions=[topic]).
    """
    return _endpoint_alarm_findings(graph, ERROR_METRICS, "5xx-error")


@SAGEMAKER.stack("sagemaker-endpoint-latency-alarm", severity="medium")
def sagemaker_endpoint_latency_alarm(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Every endpoint has a latency alarm whose dimensions match it.

    Why: Latency is how a model that still answers but too slowly (a bigger model, a cold GPU) shows up; without the
    alarm nobody learns before customers do.

    Fix: declare MetricAlarm(namespace='AWS/SageMaker', metric_name='ModelLatency', extended_statistic='p99',
    dimensions={'EndpointName': ..., 'VariantName': ...}).
    """
    return _endpoint_alarm_findings(graph, LATENCY_METRICS, "latency")


@SAGEMAKER.stack("sagemaker-endpoint-rollout-rollback", severity="high", environments=("prod",))
def sagemaker_endpoint_rollout_rollback(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Prod endpoints roll out canary or linear, rolled back automatically by the endpoint's own alarms.

    Why: An all-at-once update sends every customer to a new model at once; with canary/linear shifting and
    auto-rollback on the endpoint's error and latency alarms, a bad model reaches a slice of traffic and is withdrawn
    without a human.

    Fix: set deployment_config.blue_green_update_policy.traffic_routing_configuration type CANARY or LINEAR and
    auto_rollback_configuration.alarms naming the endpoint's 5xx and latency alarms.
    """
    out = Collected()
    alarms_by_name = {alarm_name(m.alarm): m for m in alarm_metrics(graph)}
    known_alarm_names = {alarm_name(a) for a in graph.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")}
    for endpoint in graph.of_type(ENDPOINT):
        name = physical_name(endpoint)
        deployment = endpoint.props.get("deploymentConfig")
        if deployment is UNKNOWN:
            continue
        blocks = [d for d in listify(deployment) if isinstance(d, Mapping)]
        if not blocks:
            out.flag(
                endpoint,
                f"endpoint {name} has no deployment_config: updates go all at once with no rollback",
                "add a blue/green CANARY or LINEAR policy with auto-rollback alarms",
            )
            continue
        d = blocks[0]
        routing_types = [
            str(r.get("type", "")).upper()
            for bg in listify(d.get("blueGreenUpdatePolicy"))
            if isinstance(bg, Mapping)
            for r in listify(bg.get("trafficRoutingConfiguration"))
            if isinstance(r, Mapping)
        ]
        rolling = bool(listify(d.get("rollingUpdatePolicy")))
        if not rolling and not any(t in ("CANARY", "LINEAR") for t in routing_types):
            shown = routing_types[0] if routing_types else "none"
            out.flag(
                endpoint,
                f"endpoint {name} shifts traffic {shown}, not canary or linear",
                "set traffic_routing_configuration type CANARY or LINEAR",
            )
        rollback = [
            a.get("alarmName")
            for r in listify(d.get("autoRollbackConfiguration"))
            if isinstance(r, Mapping)
            for a in listify(r.get("alarms"))
            if isinstance(a, Mapping)
        ]
        if not rollback:
            out.flag(
                endpoint,
                f"endpoint {name} has no auto-rollback alarms",
                "set auto_rollback_configuration.alarms to the endpoint's 5xx and latency alarms",
            )
            continue
        if any(a is UNKNOWN for a in rollback):
            continue
        missing = [a for a in rollback if a not in known_alarm_names]
        if missing:
            out.flag(
                endpoint,
                f"rolls back on alarm(s) {', '.join(map(str, missing))} that this stack does not declare",
                "name alarms declared in the stack",
            )
        elif not any(
            (alarm := alarms_by_name.get(str(a))) is not None
            and alarm.dimensions.get("EndpointName") in (name, UNKNOWN)
            for a in rollback
        ):
            out.flag(
                endpoint,
                f"none of its rollback alarms ({', '.join(map(str, rollback))}) watches endpoint {name}",
                "roll back on the endpoint's own 5xx and latency alarms",
            )
    return out.items


# --- registry ------------------------------------------------------------------------------


def _package_group(arn: Any) -> str | None:
    """`arn:...:model-package/<group>/<version>` -> group; None for unversioned packages or unknowns."""
    if not isinstance(arn, str) or ":model-package/" not in arn:
        return None
    parts = arn.split(":model-package/", 1)[1].split("/")
    return parts[0] if len(parts) == 2 else None


def _model_key(group: str, models: tuple[str, ...] | None) -> str:
    """Which of the stack's models a group belongs to (`churn-staging` -> `churn`)."""
    for m in sorted(models or (), key=len, reverse=True):
        if group == m or group.startswith(m + "-"):
            return m
    return group.rsplit("-", 1)[0] if "-" in group else group


@SAGEMAKER.stack("sagemaker-model-package-group-exists", severity="medium")
def sagemaker_model_package_group_exists(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Every deployed model (and every model of the stack) has a model package group.

    Why: Promotion, rollback and lineage all go through the registry: a model deployed without its package group in this
    stack cannot be traced, gated or rolled back by `mlops promote`.

    Fix: declare aws.sagemaker.ModelPackageGroup for the model (infra/registry.py does one per models entry).
    """
    groups = {str(g.props.get("modelPackageGroupName") or g.id) for g in graph.of_type(PACKAGE_GROUP)}
    group_keys = {_model_key(g, ctx.models) for g in groups}
    out = Collected()
    for model in graph.of_type(MODEL):
        containers = listify(model.props.get("primaryContainer")) + listify(model.props.get("containers"))
        for c in containers:
            group = _package_group(c.get("modelPackageName")) if isinstance(c, Mapping) else None
            if group and group not in groups and _model_key(group, ctx.models) not in group_keys:
                out.flag(
                    model,
                    f"serves a package of group {group}, but the stack declares no package "
                    f"group for model '{_model_key(group, ctx.models)}'",
                    "declare its ModelPackageGroup in this stack",
                )
    for m in ctx.models or ():
        if m not in group_keys:
            out.add(
                graph.stack,
                f"model '{m}' of this stack has no model package group. Fix: declare "
                f"aws.sagemaker.ModelPackageGroup '{m}-<stack>'",
            )
    return out.items


@SAGEMAKER.resource(
    "sagemaker-package-group-policy-no-public",
    severity="critical",
    types=(PACKAGE_GROUP_POLICY,),
    blind_spots=("resourcePolicy",),
)
def sagemaker_package_group_policy_no_public(
    resource: Resource, ctx: PolicyContext, graph: StackGraph
) -> Iterable[str]:
    """Model package group policies do not share packages with everyone.

    Why: Cross-environment read policies are how staging reads dev's packages; Principal '*' without a condition shares
    every model (and its training data lineage) with any AWS account.

    Fix: name the reading account root and restrict with aws:PrincipalArn to the next environment's roles.
    """
    for s in iam_docs.open_to_everyone(resource.props.get("resourcePolicy")):
        yield say(
            resource,
            f"resource policy {s.label} allows {', '.join(s.actions)} to Principal '*'",
            "name the reading account and add an aws:PrincipalArn condition",
        )


# --- training (read from the stack's trainingDefaults output) -----------------------------


@dataclass(frozen=True)
class TrainingDefaults:
    """The stack's `trainingDefaults` output, and the stack record that findings about it name."""

    stack: Resource
    values: Mapping[str, Any]

    def finding(self, problem: str, fix: str) -> Finding:
        return self.stack, say(self.stack, problem, fix)


def _training_defaults(graph: StackGraph) -> TrainingDefaults | None:
    td = graph.outputs.get("trainingDefaults")
    return TrainingDefaults(graph.stack, td) if graph.stack is not None and isinstance(td, Mapping) else None


@SAGEMAKER.stack("sagemaker-training-instance-allowlist", severity="high")
def sagemaker_training_instance_allowlist(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Training instance types stay within the stack's allowlist and the environment's GPU ceiling.

    Why: A p5.48xlarge costs ~$60 an hour; dev must not be able to start one by accident, and prod only the types the
    team budgeted for.

    Fix: keep training.defaultInstanceType inside training.allowedInstanceTypes, and those inside the environment's
    ceiling (dev/local: single small GPUs; staging: g-family and p3; prod: adds p4d/p5).
    """
    out = Collected()
    allowed = ctx.allowed_training_types
    ceiling = ctx.training_ceiling
    pool = allowed if allowed is not None else ceiling
    if pool is None:
        return []
    permitted = [t for t in pool if ceiling is None or t in ceiling]

    def problem(itype: str) -> str | None:
        if ceiling is not None and itype not in ceiling:
            return f"{itype} is above the {ctx.environment} GPU ceiling"
        if allowed is not None and itype not in allowed:
            return f"{itype} is not in the stack's allowlist ({', '.join(allowed)})"
        return None

    td = _training_defaults(graph)
    if td is not None:
        default = td.values.get("defaultInstanceType")
        if isinstance(default, str) and (wrong := problem(default)):
            out.flag(td.stack, f"training default instance type {wrong}", f"use one of {', '.join(permitted)}")
        for itype in listify(td.values.get("allowedInstanceTypes")):
            if isinstance(itype, str) and itype != default and (wrong := problem(itype)):
                out.flag(td.stack, f"trainingDefaults allows {wrong}", "remove it from training.allowedInstanceTypes")
    for resource in graph.of_type(*IDENTITY_POLICY_TYPES):
        for where, statements in identity_statements(resource, graph):
            for s in statements:
                if not any(iam_docs.grants(s, a) for a in TRAINING_ACTIONS):
                    continue
                bad = [v for v in s.condition_values("sagemaker:InstanceTypes") if problem(v)]
                if bad:
                    out.flag(
                        resource,
                        f"{where} {s.label} lets training use {', '.join(bad)}, outside the allowlist",
                        f"limit sagemaker:InstanceTypes to {', '.join(permitted)}",
                    )
    return out.items


@SAGEMAKER.stack("sagemaker-training-spot-checkpoints", severity="medium", environments=("dev",))
def sagemaker_training_spot_checkpoints(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Dev trains on managed spot with checkpoints, so interruptions resume.

    Why: Experiments do not need on-demand capacity: managed spot is up to 90% cheaper, and with a checkpoint URI an
    interrupted job resumes instead of starting over.

    Fix: set training.spot: true and training.maxWaitSeconds >= maxRuntimeSeconds in the dev stack; the pipeline passes
    trainingDefaults.checkpointS3Uri to every job.
    """
    td = _training_defaults(graph)
    if td is None:
        return
    spot = truthy(td.values.get("useSpot", False))
    problems = []
    if not spot:
        problems.append("trains on on-demand capacity (useSpot false)")
    if not td.values.get("checkpointS3Uri"):
        problems.append("has no checkpointS3Uri, so a spot interruption restarts from scratch")
    runtime, wait = number(td.values.get("maxRuntimeSeconds")), number(td.values.get("maxWaitSeconds"))
    if spot and runtime and (wait is None or wait < runtime):
        problems.append(f"maxWaitSeconds ({wait}) is below maxRuntimeSeconds ({runtime}); SageMaker rejects the job")
    for p in problems:
        yield td.finding(
            f"dev training {p}", "training.spot true with a checkpoint URI and maxWaitSeconds >= maxRuntimeSeconds"
        )


@SAGEMAKER.stack("sagemaker-training-max-runtime", severity="medium")
def sagemaker_training_max_runtime(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Training jobs have a maximum runtime (at most SageMaker's 28 days).

    Why: A hung GPU job bills until someone notices; MaxRuntimeInSeconds is the only hard stop.

    Fix: set training.maxRuntimeSeconds (the pipeline passes it as StoppingCondition.MaxRuntimeInSeconds).
    """
    td = _training_defaults(graph)
    if td is None:
        return
    runtime = number(td.values.get("maxRuntimeSeconds"))
    if runtime is None or runtime <= 0:
        yield td.finding("training has no maximum runtime", "set training.maxRuntimeSeconds")
    elif runtime > MAX_RUNTIME_CEILING:
        yield td.finding(
            f"training maxRuntimeSeconds {int(runtime)} exceeds SageMaker's {MAX_RUNTIME_CEILING}",
            "lower training.maxRuntimeSeconds",
        )


@SAGEMAKER.stack("sagemaker-training-volume-kms", severity="medium")
def sagemaker_training_volume_kms(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Training jobs encrypt their ML storage volumes with the environment key.

    Why: Training volumes hold a copy of the training data and checkpoints; without VolumeKmsKeyId they use an AWS-owned
    key outside the environment's control.

    Fix: export trainingDefaults.volumeKmsKeyArn (the environment key); the pipeline passes it as
    ResourceConfig.VolumeKmsKeyId.
    """
    td = _training_defaults(graph)
    if td is not None and not td.values.get("volumeKmsKeyArn"):
        yield td.finding(
            "trainingDefaults has no volumeKmsKeyArn", "export the environment key as trainingDefaults.volumeKmsKeyArn"
        )


@SAGEMAKER.stack("sagemaker-training-vpc", severity="medium", needs=("has_vpc",))
def sagemaker_training_vpc(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """Where the environment has a VPC, training jobs run inside it.

    Why: Training containers read the whole training set; outside the VPC they can send it anywhere.

    Fix: export trainingDefaults.vpc with the stack's subnetIds and securityGroupIds.
    """
    td = _training_defaults(graph)
    if not ctx.has_vpc or td is None:
        return
    vpc = td.values.get("vpc")
    if not (isinstance(vpc, Mapping) and listify(vpc.get("subnetIds")) and listify(vpc.get("securityGroupIds"))):
        yield td.finding(
            "training jobs run outside the environment's VPC",
            "export trainingDefaults.vpc with the stack's subnets and security groups",
        )
