"""A bad stack config fails before any resource is declared, naming the key, the value and what is allowed."""

import copy

import pytest

from infra.preview import preview_stack
from kernel.paths import STACKS_DIR
from kernel.stack_config import ConfigError, load_stack_config, parse_config, read_raw_config


def raw(stack="prod"):
    return copy.deepcopy(read_raw_config(stack)[1])


def problems_of(stack, mutate):
    config = raw(stack)
    mutate(config)
    with pytest.raises(ConfigError) as caught:
        parse_config(stack, config)
    return str(caught.value)


def test_every_shipped_stack_is_valid():
    for stack in ("dev", "staging", "prod", "local"):
        config = load_stack_config(stack)
        assert config.stack == stack
        assert config.deployed_models == []  # nothing approved until `mlops promote`


def _update(section: str, **changes):
    return lambda c: c[section].update(**changes)


BAD = [
    # (id, stack, mutation, fragments that must appear in the message)
    (
        "unknown-training-type",
        "prod",
        lambda c: c["mlops:training"]["allowedInstanceTypes"].append("ml.x9.huge"),
        ["mlops:training.allowedInstanceTypes[4]", "'ml.x9.huge'", "supported:", "ml.p5.48xlarge"],
    ),
    (
        "gpu-not-allowed-in-dev",
        "dev",
        _update("mlops:training", allowedInstanceTypes=["ml.g5.xlarge", "ml.p5.48xlarge"]),
        [
            "mlops:training.allowedInstanceTypes[1]",
            "'ml.p5.48xlarge'",
            "not allowed in a dev environment",
            "ml.g5.xlarge",
        ],
    ),
    (
        "default-not-in-allowlist",
        "staging",
        _update("mlops:training", defaultInstanceType="ml.g4dn.xlarge"),
        ["mlops:training.defaultInstanceType", "'ml.g4dn.xlarge'", "must be one of allowedInstanceTypes"],
    ),
    (
        "zero-instances",
        "prod",
        _update("mlops:serving", initialInstanceCount=0),
        ["mlops:serving.initialInstanceCount", "0", "between 1 and 100"],
    ),
    (
        "negative-autoscaling",
        "staging",
        lambda c: c["mlops:serving"]["autoscaling"].update(minCapacity=-1),
        ["mlops:serving.autoscaling.minCapacity", "-1"],
    ),
    (
        "max-below-min",
        "prod",
        lambda c: c["mlops:serving"]["autoscaling"].update(maxCapacity=1),
        ["mlops:serving.autoscaling.maxCapacity", "must be at least minCapacity (2)"],
    ),
    (
        "canary-step-over-100",
        "prod",
        lambda c: c["mlops:serving"]["rollout"].update(stepPercent=150),
        ["mlops:serving.rollout.stepPercent", "150", "between 1 and 100"],
    ),
    (
        "unknown-rollout",
        "staging",
        lambda c: c["mlops:serving"]["rollout"].update(type="big-bang"),
        ["mlops:serving.rollout.type", "'big-bang'", "canary, linear, all_at_once"],
    ),
    (
        "prod-without-alert-email",
        "prod",
        lambda c: c["mlops:monitoring"].pop("alertEmail"),
        ["mlops:monitoring.alertEmail: missing", "prod must page a person"],
    ),
    (
        "malformed-email",
        "dev",
        _update("mlops:monitoring", alertEmail="not-an-address"),
        ["mlops:monitoring.alertEmail", "'not-an-address'", "e-mail"],
    ),
    (
        "malformed-package-arn",
        "staging",
        _update("mlops:approvedPackages", churn="arn:aws:sagemaker:us-east-1:1:model/churn"),
        ["mlops:approvedPackages.churn", "versioned model package ARN"],
    ),
    (
        "package-for-unknown-model",
        "dev",
        _update("mlops:approvedPackages", fraud=""),
        ["mlops:approvedPackages.fraud", "not a model of this stack"],
    ),
    (
        "unknown-top-level-key",
        "dev",
        lambda c: c.update({"mlops:trainng": {}}),
        ["mlops:trainng: unknown key", "mlops:training"],
    ),
    (
        "unknown-nested-key",
        "dev",
        _update("mlops:training", maxRuntime=5),
        ["mlops:training.maxRuntime: unknown key", "maxRuntimeSeconds"],
    ),
    (
        "zero-budget",
        "staging",
        _update("mlops:monitoring", monthlyBudgetUsd=0),
        ["mlops:monitoring.monthlyBudgetUsd", "over 0"],
    ),
    (
        "spot-wait-below-runtime",
        "dev",
        _update("mlops:training", maxWaitSeconds=60),
        ["mlops:training.maxWaitSeconds", "at least maxRuntimeSeconds (7200)"],
    ),
    (
        "dev-bills-by-the-hour",
        "dev",
        _update("mlops:serving", mode="instance", instanceType="ml.g5.xlarge"),
        ["mlops:serving.mode", "dev must not bill by the hour"],
    ),
    (
        "prod-without-capture",
        "prod",
        _update("mlops:serving", dataCaptureSamplingPercent=0),
        ["mlops:serving.dataCaptureSamplingPercent", "prod must capture data"],
    ),
    (
        "prod-all-at-once",
        "prod",
        lambda c: c["mlops:serving"]["rollout"].update(type="all_at_once", stepPercent=100),
        ["mlops:serving.rollout.type", "canary or linear"],
    ),
    (
        "prod-skips-staging",
        "prod",
        lambda c: c.update({"mlops:promotion": {"requireLiveIn": "dev"}}),
        ["mlops:promotion.requireLiveIn", "'dev'", "staging"],
    ),
    (
        "unknown-region",
        "dev",
        lambda c: c.update({"aws:region": "mars-north-1"}),
        ["aws:region", "'mars-north-1'", "us-east-1"],
    ),
    ("missing-required-tag", "dev", lambda c: c["mlops:tags"].pop("cost-center"), ["mlops:tags.cost-center: missing"]),
    ("bad-log-retention", "dev", _update("mlops:retention", logDays=10), ["mlops:retention.logDays", "10", "14"]),
    (
        "custom-endpoint-outside-local",
        "prod",
        lambda c: c.update({"aws:endpoints": [{"s3": "http://127.0.0.1:5000"}]}),
        ["aws:endpoints", "local stack only"],
    ),
    (
        "local-endpoint-not-loopback",
        "local",
        lambda c: c["aws:endpoints"][0].update(s3="http://10.0.0.5:5000"),
        ["aws:endpoints.s3", "loopback"],
    ),
    (
        "suppression-without-expiry",
        "staging",
        lambda c: c.update(
            {"mlops:policy": {"suppressions": [{"rule": "s3-access-logging", "resource": "x", "reason": "y"}]}}
        ),
        ["mlops:policy.suppressions[0]", "expires"],
    ),
    (
        "bad-enforcement-level",
        "staging",
        lambda c: c.update({"mlops:policy": {"enforcement": {"s3-versioning": "sometimes"}}}),
        ["mlops:policy.enforcement.s3-versioning", "'sometimes'", "advisory, mandatory, disabled"],
    ),
    (
        "vpc-half-configured",
        "staging",
        lambda c: c.update({"mlops:vpc": {"subnetIds": ["subnet-0123abcd"]}}),
        ["mlops:vpc: give both subnetIds and securityGroupIds"],
    ),
    # AWS rules (docs/aws-rules.md, "Names and values"): each message adds the rule ID and its source.
    (
        "canary-over-half-the-fleet",
        "prod",
        lambda c: c["mlops:serving"]["rollout"].update(stepPercent=60),
        ["mlops:serving.rollout.stepPercent", "60", "at most 50%", "BLUEGREEN-CANARY", "API_TrafficRoutingConfig.html"],
    ),
    (
        "linear-step-too-small",
        "staging",
        lambda c: c["mlops:serving"]["rollout"].update(stepPercent=5),
        ["mlops:serving.rollout.stepPercent", "5", "10-50%", "BLUEGREEN-LINEAR", "blue-green-linear.html"],
    ),
    (
        "linear-step-too-large",
        "staging",
        lambda c: c["mlops:serving"]["rollout"].update(stepPercent=75),
        ["mlops:serving.rollout.stepPercent", "75", "10-50%", "BLUEGREEN-LINEAR"],
    ),
    (
        "rollout-longer-than-the-provider-waits",
        "staging",
        lambda c: c["mlops:serving"]["rollout"].update(stepPercent=10, bakeSeconds=400),
        ["mlops:serving.rollout.bakeSeconds", "400", "bakes 4400 s", "3600 s", "BLUEGREEN-WAITS", "endpoint.go"],
    ),
    (
        "bake-beyond-sagemaker-wait-interval",
        "prod",
        lambda c: c["mlops:serving"]["rollout"].update(bakeSeconds=3601),
        ["mlops:serving.rollout.bakeSeconds", "3601", "between 0 and 3600"],
    ),
    (
        "serverless-limits-from-botocore",
        "dev",
        _update("mlops:serving", serverlessMemoryMb=1000, serverlessMaxConcurrency=201),
        ["mlops:serving.serverlessMemoryMb", "1024, 2048", "6144", "serverlessMaxConcurrency", "between 1 and 200"],
    ),
    (
        "nan-drift-threshold",
        "dev",
        _update("mlops:monitoring", driftThreshold=float("nan")),
        ["mlops:monitoring.driftThreshold", "nan", "finite number", "FINITE-NUMBERS", "rfc8259"],
    ),
    (
        "infinite-budget",
        "dev",
        _update("mlops:monitoring", monthlyBudgetUsd=float("inf")),
        ["mlops:monitoring.monthlyBudgetUsd", "inf", "finite number"],
    ),
    (
        "nan-instance-count",
        "prod",
        _update("mlops:serving", initialInstanceCount=float("nan")),
        ["mlops:serving.initialInstanceCount", "nan", "whole number", "FINITE-NUMBERS"],
    ),
    (
        "infinite-gate-minimum",
        "dev",
        lambda c: c["mlops:gate"]["minimums"].update(roc_auc=float("inf")),
        ["mlops:gate.minimums.roc_auc", "inf", "finite number"],
    ),
    (
        "model-name-ends-in-hyphen",
        "dev",
        lambda c: c.update({"mlops:models": ["churn-"]}),
        ["mlops:models[0]", "'churn-'", "not ending in a hyphen", "NAME-LENGTHS"],
    ),
    (
        "model-name-with-underscore",
        "dev",
        lambda c: c.update({"mlops:models": ["churn_v2"]}),
        ["mlops:models[0]", "'churn_v2'", "lowercase letters, digits and single hyphens"],
    ),
    (
        "duplicate-model",
        "staging",
        lambda c: c.update({"mlops:models": ["churn", "churn"]}),
        ["mlops:models[1]", "'churn'", "duplicate of mlops:models[0]"],
    ),
    (
        "model-name-too-long-for-its-endpoint-config",
        "staging",
        lambda c: c.update({"mlops:models": ["m" * 41], "mlops:approvedPackages": {}}),
        [
            "mlops:models[0]",
            "endpoint config",
            "(64 characters)",
            "0-63 characters",
            "NAME-LENGTHS",
            "botocore sagemaker CreateEndpointConfig",
        ],
    ),
    (
        "training-count-not-a-number",
        "dev",
        _update("mlops:training", maxRuntimeSeconds="lots"),
        ["mlops:training.maxRuntimeSeconds", "'lots'", "whole number"],
    ),
]


@pytest.mark.parametrize("case", BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_key_value_and_what_is_allowed(case):
    _, stack, mutate, fragments = case
    message = problems_of(stack, mutate)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} missing from:\n{message}"


@pytest.mark.parametrize(
    ("stack", "fragments"),
    [
        ("dev_2", ["stack: 'dev_2'", "lowercase letters, digits and single hyphens", "NAME-LENGTHS"]),
        ("Dev", ["stack: 'Dev'", "lowercase"]),
        (
            "experiment-with-a-longer-name-abc",  # 33 characters
            ["S3 bucket (access-logs) name", "(64 characters)", "3-63 characters", "bucketnamingrules.html"],
        ),
    ],
)
def test_stack_names_that_derive_invalid_resource_names_are_refused(stack, fragments):
    """AWS rule: NAME-LENGTHS"""
    with pytest.raises(ConfigError) as caught:
        parse_config(stack, raw("dev"))
    for fragment in fragments:
        assert fragment in str(caught.value), str(caught.value)


def test_longest_names_that_still_fit_are_accepted():
    """AWS rule: NAME-LENGTHS: limits come from the real prefixes, not a fixed cap."""
    config = raw("staging")
    # endpoint config: "mlops-staging-" + model + "-" + the provider's 26 unique characters = exactly 63
    config.update({"mlops:models": ["m" * 22], "mlops:approvedPackages": {}})
    assert parse_config("staging", config).models == ("m" * 22,)
    config.update({"mlops:models": ["m" * 23]})
    with pytest.raises(ConfigError, match="endpoint config"):
        parse_config("staging", config)
    # with model churn: "mlops-" + stack + "-churn-" + 26 unique characters = exactly 63
    assert parse_config("experiment-with-a-longer", raw("dev")).stack
    with pytest.raises(ConfigError, match="endpoint config"):
        parse_config("experiment-with-a-longerx", raw("dev"))


def test_every_problem_is_reported_at_once():
    def two_mistakes(c):
        c["mlops:serving"].update(initialInstanceCount=0)
        c["mlops:monitoring"].pop("alertEmail")

    message = problems_of("prod", two_mistakes)
    assert "2 configuration error(s)" in message
    assert "initialInstanceCount" in message and "alertEmail" in message


def test_bad_config_declares_no_resource(registrations):
    """The program must refuse before Pulumi sees a single registration."""
    with pytest.raises(ConfigError, match="initialInstanceCount"):
        preview_stack("prod", {"mlops:serving": {**raw("prod")["mlops:serving"], "initialInstanceCount": 0}})
    assert registrations == []


def test_program_validates_config_itself_under_the_engine():
    """`pulumi up` does not go through preview_stack: __main__.py must reject bad config on its own."""
    import asyncio
    import runpy

    import pulumi
    from pulumi.runtime import settings
    from pulumi.runtime.stack import run_pulumi_func

    from infra.preview import PROGRAM, AwsMocks, RecordingMonitor
    from kernel.stack_config import to_pulumi_config

    bad = raw("dev")
    bad["mlops:training"]["allowedInstanceTypes"] = ["ml.p5.48xlarge"]
    monitor = RecordingMonitor(AwsMocks("us-east-1"))
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        settings.ROOT.set(None)
        pulumi.runtime.set_all_config(to_pulumi_config(bad))
        pulumi.runtime.set_mocks(monitor.mocks, project="mlops", stack="dev", preview=False, monitor=monitor)
        with pytest.raises(ConfigError, match="not allowed in a dev environment"):
            loop.run_until_complete(run_pulumi_func(lambda: runpy.run_path(str(PROGRAM), run_name="__main__")))
    finally:
        settings.ROOT.set(None)
        loop.close()
        asyncio.set_event_loop(None)
    assert [r["type"] for r in monitor.records if r["custom"]] == []


def test_unknown_stack_names_the_known_ones():
    with pytest.raises(ConfigError, match="known stacks: dev, local, prod, staging"):
        load_stack_config("qa")


def test_config_file_outside_stacks_dir(tmp_path):
    target = tmp_path / "Pulumi.sandbox.yaml"
    target.write_text((STACKS_DIR / "Pulumi.dev.yaml").read_text())
    config = load_stack_config(target)
    assert config.stack == "sandbox" and config.environment == "dev"


def _numeric_leaves(value, path):
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _numeric_leaves(v, (*path, k))
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield path


@pytest.mark.parametrize("stack", ["prod", "dev"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_nan_and_infinity_are_refused_for_every_number(stack, bad):
    """AWS rule: FINITE-NUMBERS: every number a stack file holds (YAML's .nan, .inf) is refused by name."""
    leaves = list(_numeric_leaves(raw(stack), ()))
    assert len(leaves) >= 15
    for path in leaves:
        config = raw(stack)
        target = config
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = bad
        with pytest.raises(ConfigError) as caught:
            parse_config(stack, config)
        assert f"{path[0]}{''.join('.' + str(k) for k in path[1:])}: {bad!r}" in str(caught.value)


def test_the_oidc_provider_belongs_to_the_bootstrap_not_a_stack():
    def manage(c):
        c["mlops:github"]["manageOidcProvider"] = True

    message = problems_of("staging", manage)
    assert "mlops:github.manageOidcProvider" in message and "infra/bootstrap" in message


@pytest.mark.parametrize("branch, ok", [("main", True), ("release/2026", True), ("*", False), ("", False)])
def test_the_default_branch_staging_and_prod_trust_is_a_plain_branch_name(branch, ok):
    config = raw("prod")
    config["mlops:github"]["defaultBranch"] = branch
    if ok:
        assert parse_config("prod", config).github.defaultBranch == branch
    else:
        with pytest.raises(ConfigError, match="defaultBranch"):
            parse_config("prod", config)


@pytest.mark.parametrize("metric, value, ok", [("roc_auc", 0.75, True), ("roc_auc", 2.0, False), ("rmse", 12.5, True)])
def test_a_gate_minimum_a_score_can_never_reach_is_refused(metric, value, ok):
    config = raw("staging")
    config["mlops:gate"] = {"metric": "roc_auc", "minimums": {metric: value}}
    if ok:
        assert parse_config("staging", config).gate.minimums == {metric: value}
    else:
        with pytest.raises(ConfigError, match=rf"minimums\.{metric}.*at most 1\.0"):
            parse_config("staging", config)
