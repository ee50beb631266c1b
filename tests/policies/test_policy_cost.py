"""The cost estimator: prices from the data file, quantities from the graph, unknowns are errors."""

from __future__ import annotations

import json

import pytest
from policy_testkit import ctx, deployed, res, stack_records, stack_resource

from policies.cost import PRICES_PATH, CostError, PriceBook, estimate
from policies.engine import evaluate
from policies.graph import StackGraph
from policies.rules import RULES_BY_ID

REGIONS = ("us-east-1", "us-west-2", "eu-west-1")
FAMILIES = ("ml.g4dn", "ml.g5", "ml.g6", "ml.p3", "ml.p4d", "ml.p5")


def test_price_file_records_source_date_and_covers_the_stacks_regions_and_families():
    doc = json.loads(PRICES_PATH.read_text())
    assert doc["source"].startswith("Amazon SageMaker") and doc["asOf"] and doc["recorded"] and doc["method"]
    assert set(REGIONS) <= set(doc["regions"])
    for region in REGIONS:
        r = doc["regions"][region]
        for kind in ("trainingPerHour", "hostingPerHour"):
            for family in FAMILIES:
                assert any(t.startswith(family + ".") for t in r["sagemaker"][kind]), (region, kind, family)
            assert all(isinstance(p, float) and p > 0 for p in r["sagemaker"][kind].values())
        assert r["sagemaker"]["serverless"]["computePerGbSecond"] > 0
        for service, key in (
            ("s3", "standardPerGbMonth"),
            ("kms", "keyPerMonth"),
            ("cloudwatch", "alarmPerMetricMonth"),
            ("cloudwatch", "logsIngestedPerGb"),
            ("sns", "publishesPerMillion"),
        ):
            assert r[service][key] > 0


def test_every_instance_type_the_stacks_may_use_has_a_price():
    from kernel.stack_config import GPU_TRAINING_TYPES, HOSTING_TYPES

    book = PriceBook.load()
    for region in REGIONS:
        for t in GPU_TRAINING_TYPES:
            assert book.instance(region, "training", t) > 0
        for t in HOSTING_TYPES:
            assert book.instance(region, "hosting", t) > 0


def _endpoint(instance_type="ml.g5.xlarge", count=2.0, scaling_min=None, serverless=None):
    variant = {"variantName": "primary", "modelName": "m"}
    if serverless:
        variant["serverlessConfig"] = serverless
    else:
        variant.update(instanceType=instance_type, initialInstanceCount=count)
    records = [
        stack_resource({"region": "us-east-1"}),
        res(
            "aws:sagemaker/endpointConfiguration:EndpointConfiguration",
            "cfg",
            {"name": "cfg", "productionVariants": [variant]},
        ),
        res("aws:sagemaker/endpoint:Endpoint", "ep", {"name": "ep", "endpointConfigName": "cfg"}),
    ]
    if scaling_min is not None:
        records.append(
            res(
                "aws:appautoscaling/target:Target",
                "t",
                {
                    "serviceNamespace": "sagemaker",
                    "resourceId": "endpoint/ep/variant/primary",
                    "minCapacity": scaling_min,
                },
            )
        )
    return StackGraph(records)


def test_instance_endpoint_bills_its_autoscaling_minimum_all_month():
    book = PriceBook.load()
    hourly = book.instance("us-east-1", "hosting", "ml.g5.xlarge")
    assert estimate(_endpoint(count=2.0), ctx(), book).monthly_total == pytest.approx(2 * 730 * hourly)
    assert estimate(_endpoint(count=2.0, scaling_min=3.0), ctx(), book).monthly_total == pytest.approx(3 * 730 * hourly)


def test_serverless_bills_by_assumed_traffic():
    book = PriceBook.load()
    result = estimate(_endpoint(serverless={"memorySizeInMb": 2048.0, "maxConcurrency": 5.0}), ctx(), book)
    compute = 1_000_000 * 0.1 * 2 * 0.00002
    data = 1_000_000 * 10 * 2 / 1024 / 1024 * 0.016
    assert result.monthly_total == pytest.approx(compute + data)
    provisioned = estimate(_endpoint(serverless={"memorySizeInMb": 1024.0, "provisionedConcurrency": 1.0}), ctx(), book)
    assert provisioned.monthly_total > result.monthly_total / 2 + 730 * 3600 * 0.0000048 * 0.99


def test_unknown_instance_type_is_an_error_not_zero():
    with pytest.raises(CostError, match=r"unknown SageMaker hosting instance type 'ml\.g9\.xlarge'"):
        estimate(_endpoint("ml.g9.xlarge"), ctx())


def test_unknown_region_is_an_error():
    with pytest.raises(CostError, match="no prices for region 'ap-south-2'"):
        estimate(_endpoint(), ctx(region="ap-south-2"))


def test_training_run_spot_versus_on_demand():
    graph = StackGraph(
        [
            stack_resource(
                {
                    "region": "eu-west-1",
                    "trainingDefaults": {
                        "defaultInstanceType": "ml.p4d.24xlarge",
                        "maxRuntimeSeconds": 7200,
                        "useSpot": True,
                    },
                }
            )
        ]
    )
    book = PriceBook.load()
    run = estimate(graph, ctx(), book).training
    assert run.on_demand_usd == pytest.approx(2 * book.instance("eu-west-1", "training", "ml.p4d.24xlarge"))
    assert (
        run.spot_usd == pytest.approx(run.on_demand_usd * (1 - book.spot_savings)) and run.per_run_usd == run.spot_usd
    )


def test_prod_estimate_from_the_real_preview():
    records, context = stack_records("prod", deployed("prod"))
    result = estimate(StackGraph(records), context)
    parts = result.by_component()
    assert parts["endpoint"] == pytest.approx(
        2 * 730 * PriceBook.load().instance("us-east-1", "hosting", "ml.m5.xlarge")
    )
    assert {"storage", "kms", "alarms", "logs", "training"} <= set(parts)
    assert result.training.instance_type == "ml.g5.12xlarge" and result.training.use_spot is False
    assert 0 < result.monthly_total < context.monthly_budget_usd
    doc = result.to_json()
    assert doc["monthlyTotalUsd"] == round(result.monthly_total, 2) and doc["prices"]["asOf"]


def test_budget_rule_reports_an_unpriced_type_instead_of_passing():
    graph = _endpoint("ml.g9.xlarge")
    result = evaluate(graph, ctx(environment="prod", monthly_budget_usd=100.0), [RULES_BY_ID["cost-within-budget"]])
    assert "cannot estimate" in result.violations[0].message
