"""Monthly cost of a stack from its resource graph, and the cost of one training run.

Prices come from `policies/prices.json` (source and date inside). What the graph cannot say —
traffic to a serverless endpoint, gigabytes stored, log volume, how often we retrain — comes from
`CostAssumptions`, printed with every estimate. An instance type the price list does not know
is an error, never a zero.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel.aws_model import UNKNOWN
from policies.context import CostAssumptions, PolicyContext
from policies.graph import StackGraph, listify, number
from policies.records import Resource
from policies.sagemaker_graph import (
    ALARM,
    ENDPOINT,
    config_of,
    is_serverless,
    physical_name,
    scaling_minimum,
    variants,
)

PRICES_PATH = Path(__file__).resolve().parent / "prices.json"

BUCKET = "aws:s3/bucket:Bucket"
KMS_KEY = "aws:kms/key:Key"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
TOPIC = "aws:sns/topic:Topic"
REPOSITORY = "aws:ecr/repository:Repository"


class CostError(ValueError):
    """The estimate cannot be made: an unknown price, region or instance type."""


class PriceBook:
    """The price data file, with lookups that fail loudly."""

    def __init__(self, document: Mapping[str, Any], path: str = ""):
        self.doc = document
        self.path = path
        for key in ("source", "asOf", "regions", "hoursPerMonth"):
            if key not in document:
                raise CostError(f"{path or 'price file'}: missing key '{key}'")

    @classmethod
    def load(cls, path: str | Path | None = None) -> PriceBook:
        path = Path(path or PRICES_PATH)
        try:
            return cls(json.loads(path.read_text()), str(path))
        except (OSError, json.JSONDecodeError) as err:
            raise CostError(f"cannot read prices from {path}: {err}") from None

    @property
    def hours_per_month(self) -> float:
        return float(self.doc["hoursPerMonth"])

    @property
    def spot_savings(self) -> float:
        return float(self.doc.get("spotSavingsFraction", {}).get("default", 0.0))

    def region(self, region: str) -> Mapping[str, Any]:
        regions: Mapping[str, Mapping[str, Any]] = self.doc["regions"]
        if region not in regions:
            raise CostError(
                f"no prices for region {region!r}; priced regions: {', '.join(sorted(regions))} "
                f"(add it to {self.path or 'policies/prices.json'})"
            )
        return regions[region]

    def instance(self, region: str, kind: str, instance_type: str) -> float:
        """Per-hour price of a SageMaker instance for `kind` 'training' or 'hosting'."""
        table = self.region(region)["sagemaker"][f"{kind}PerHour"]
        if instance_type not in table:
            family = instance_type.rsplit(".", 1)[0]
            known = sorted(t for t in table if t.startswith(family + ".")) or sorted(table)[:8]
            raise CostError(
                f"unknown SageMaker {kind} instance type {instance_type!r} in {region}; priced "
                f"types like it: {', '.join(known)} (add it to {self.path or 'policies/prices.json'})"
            )
        return float(table[instance_type])

    def get(self, region: str, service: str, key: str) -> float:
        try:
            return float(self.region(region)[service][key])
        except KeyError:
            raise CostError(f"price {service}.{key} missing for {region} in {self.path or 'prices.json'}") from None


@dataclass(frozen=True)
class LineItem:
    component: str  # endpoint | serverless | storage | kms | alarms | dashboards | logs | sns | ecr
    resource: str  # logical name
    description: str
    quantity: float
    unit: str
    unit_price: float
    monthly_usd: float

    def to_json(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "resource": self.resource,
            "description": self.description,
            "quantity": round(self.quantity, 6),
            "unit": self.unit,
            "unitPriceUsd": self.unit_price,
            "monthlyUsd": round(self.monthly_usd, 2),
        }


@dataclass(frozen=True)
class TrainingRunCost:
    instance_type: str
    instance_count: int
    max_hours: float
    on_demand_usd: float
    spot_usd: float
    spot_savings_fraction: float
    use_spot: bool

    @property
    def per_run_usd(self) -> float:
        return self.spot_usd if self.use_spot else self.on_demand_usd

    def to_json(self) -> dict[str, Any]:
        return {
            "instanceType": self.instance_type,
            "instanceCount": self.instance_count,
            "maxHours": round(self.max_hours, 3),
            "onDemandUsd": round(self.on_demand_usd, 2),
            "spotUsd": round(self.spot_usd, 2),
            "spotSavingsFraction": self.spot_savings_fraction,
            "useSpot": self.use_spot,
            "perRunUsd": round(self.per_run_usd, 2),
        }


@dataclass(frozen=True)
class CostEstimate:
    stack: str
    region: str
    items: list[LineItem]
    training: TrainingRunCost | None
    training_runs_per_month: float
    assumptions: CostAssumptions
    prices_source: str
    prices_as_of: str
    notes: list[str] = field(default_factory=list)

    @property
    def infrastructure_monthly(self) -> float:
        return sum(i.monthly_usd for i in self.items)

    @property
    def training_monthly(self) -> float:
        return self.training.per_run_usd * self.training_runs_per_month if self.training else 0.0

    @property
    def monthly_total(self) -> float:
        return self.infrastructure_monthly + self.training_monthly

    def by_component(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for i in self.items:
            out[i.component] = out.get(i.component, 0.0) + i.monthly_usd
        if self.training:
            out["training"] = self.training_monthly
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "region": self.region,
            "currency": "USD",
            "monthlyTotalUsd": round(self.monthly_total, 2),
            "infrastructureMonthlyUsd": round(self.infrastructure_monthly, 2),
            "trainingMonthlyUsd": round(self.training_monthly, 2),
            "byComponent": {k: round(v, 2) for k, v in sorted(self.by_component().items())},
            "items": [i.to_json() for i in self.items],
            "trainingRun": self.training.to_json() if self.training else None,
            "trainingRunsPerMonth": self.training_runs_per_month,
            "assumptions": self.assumptions.to_json(),
            "prices": {"source": self.prices_source, "asOf": self.prices_as_of},
            "notes": self.notes,
        }


def stack_region(graph: StackGraph, ctx: PolicyContext) -> str:
    if ctx.region:
        return ctx.region
    region = graph.outputs.get("region")
    if isinstance(region, str) and region:
        return region
    for r in graph.records:
        arn = r.props.get("arn")
        parts = arn.split(":") if isinstance(arn, str) and arn.startswith("arn:aws") else []
        if len(parts) > 3 and parts[3]:
            return parts[3]
    raise CostError("cannot tell the stack's region: pass --stack (config aws:region) or a graph with ARNs")


def estimate(graph: StackGraph, ctx: PolicyContext, prices: PriceBook | None = None) -> CostEstimate:
    """The monthly cost of everything the graph declares, plus training runs at the assumed cadence."""
    prices = prices or PriceBook.load()
    a = ctx.cost
    region = stack_region(graph, ctx)
    hours = prices.hours_per_month
    items: list[LineItem] = []
    notes: list[str] = []

    for endpoint in graph.of_type(ENDPOINT):
        config = config_of(endpoint, graph)
        name = physical_name(endpoint)
        if config is None:
            notes.append(f"endpoint {endpoint.name}: configuration not found in the graph; not priced")
            continue
        for v in variants(config):
            vname = str(v.get("variantName") or "primary")
            if is_serverless(v):
                items.extend(_serverless(endpoint.name, vname, v, region, prices, a, hours))
                continue
            itype = v.get("instanceType")
            if not isinstance(itype, str):
                raise CostError(f"endpoint {endpoint.name} variant {vname}: instance type unknown")
            count = scaling_minimum(graph, name, vname)
            basis = "autoscaling minCapacity"
            if count is None:
                count = number(v.get("initialInstanceCount")) or 1.0
                basis = "initialInstanceCount"
            price = prices.instance(region, "hosting", itype)
            items.append(
                LineItem(
                    "endpoint",
                    endpoint.name,
                    f"{vname}: {int(count)} x {itype} always on ({basis})",
                    count * hours,
                    "instance-hours",
                    price,
                    count * hours * price,
                )
            )

    storage_price = prices.get(region, "s3", "standardPerGbMonth")
    for bucket in graph.of_type(BUCKET):
        purpose = _purpose(bucket)
        gb = a.storage_gb.get(purpose, a.storage_gb.get("default", 0.0))
        items.append(
            LineItem(
                "storage",
                bucket.name,
                f"S3 Standard, {purpose} (assumed {gb:g} GB)",
                gb,
                "GB-month",
                storage_price,
                gb * storage_price,
            )
        )

    keys = graph.of_type(KMS_KEY)
    if keys:
        key_price = prices.get(region, "kms", "keyPerMonth")
        req_price = prices.get(region, "kms", "requestsPer10000")
        for key in keys:
            requests = a.kms_requests_per_key
            items.append(
                LineItem(
                    "kms",
                    key.name,
                    f"customer-managed key + {requests:,.0f} requests",
                    1,
                    "key-month",
                    key_price,
                    key_price + requests / 10_000 * req_price,
                )
            )

    alarm_price = prices.get(region, "cloudwatch", "alarmPerMetricMonth")
    high_res_price = prices.get(region, "cloudwatch", "highResolutionAlarmPerMetricMonth")
    for alarm in graph.of_type(ALARM):
        metrics = max(
            1,
            sum(
                1
                for q in listify(alarm.props.get("metricQueries"))
                if isinstance(q, Mapping) and listify(q.get("metric"))
            ),
        )
        period = number(alarm.props.get("period"))
        unit = high_res_price if period is not None and period < 60 else alarm_price
        items.append(
            LineItem("alarms", alarm.name, f"{metrics} metric(s)", metrics, "alarm-metric-month", unit, metrics * unit)
        )

    dashboard_price = prices.get(region, "cloudwatch", "dashboardPerMonth")
    for d in graph.of_type(DASHBOARD):
        items.append(
            LineItem("dashboards", d.name, "custom dashboard", 1, "dashboard-month", dashboard_price, dashboard_price)
        )

    ingest = prices.get(region, "cloudwatch", "logsIngestedPerGb")
    stored = prices.get(region, "cloudwatch", "logsStoredPerGbMonth")
    for lg in graph.of_type(LOG_GROUP):
        gb = a.log_ingestion_gb_per_group
        retention = number(lg.props.get("retentionInDays")) if lg.props.get("retentionInDays") is not UNKNOWN else None
        months_kept = min((retention or 365.0) / 30.0, 12.0)
        stored_gb = gb * months_kept
        items.append(
            LineItem(
                "logs",
                lg.name,
                f"{gb:g} GB/month ingested, ~{stored_gb:g} GB kept",
                gb,
                "GB ingested",
                ingest,
                gb * ingest + stored_gb * stored,
            )
        )

    publish = prices.get(region, "sns", "publishesPerMillion")
    for topic in graph.of_type(TOPIC):
        n = a.sns_publishes_per_month
        items.append(
            LineItem("sns", topic.name, f"{n:,.0f} publishes", n / 1e6, "million publishes", publish, n / 1e6 * publish)
        )

    ecr_price = prices.get(region, "ecr", "storagePerGbMonth")
    for repo in graph.of_type(REPOSITORY):
        gb = a.ecr_storage_gb
        items.append(
            LineItem("ecr", repo.name, f"image storage (assumed {gb:g} GB)", gb, "GB-month", ecr_price, gb * ecr_price)
        )

    training = training_run(graph, region, prices)
    return CostEstimate(
        ctx.stack or str(graph.outputs.get("stackName") or ""),
        region,
        items,
        training,
        a.training_runs_per_month if training else 0.0,
        a,
        str(prices.doc["source"]),
        str(prices.doc["asOf"]),
        notes,
    )


def training_run(graph: StackGraph, region: str, prices: PriceBook) -> TrainingRunCost | None:
    """One training run at the stack's default instance type, billed for at most its max runtime."""
    td = graph.outputs.get("trainingDefaults")
    if not isinstance(td, Mapping):
        return None
    itype = td.get("defaultInstanceType")
    runtime = number(td.get("maxRuntimeSeconds"))
    if not isinstance(itype, str) or not runtime:
        return None
    count = int(number(td.get("instanceCount")) or 1)
    hourly = prices.instance(region, "training", itype)
    hours = runtime / 3600.0
    on_demand = hourly * hours * count
    savings = prices.spot_savings
    return TrainingRunCost(itype, count, hours, on_demand, on_demand * (1 - savings), savings, bool(td.get("useSpot")))


def _serverless(
    endpoint: str, vname: str, v: Mapping[str, Any], region: str, prices: PriceBook, a: CostAssumptions, hours: float
) -> list[LineItem]:
    config = next((c for c in listify(v.get("serverlessConfig")) if isinstance(c, Mapping)), {})
    memory_gb = (number(config.get("memorySizeInMb")) or 1024.0) / 1024.0
    serverless = prices.region(region)["sagemaker"]["serverless"]
    compute = float(serverless["computePerGbSecond"])
    data = float(serverless["dataProcessedPerGb"])
    gb_seconds = a.serverless_requests_per_month * a.serverless_mean_duration_ms / 1000.0 * memory_gb
    data_gb = a.serverless_requests_per_month * a.payload_kb * 2 / 1024 / 1024
    items = [
        LineItem(
            "serverless",
            endpoint,
            f"{vname}: {a.serverless_requests_per_month:,.0f} requests x "
            f"{a.serverless_mean_duration_ms:g} ms at {memory_gb * 1024:.0f} MB (assumed traffic)",
            gb_seconds,
            "GB-seconds",
            compute,
            gb_seconds * compute,
        ),
        LineItem(
            "serverless",
            endpoint,
            f"{vname}: {data_gb:.1f} GB in+out processed (assumed)",
            data_gb,
            "GB",
            data,
            data_gb * data,
        ),
    ]
    provisioned = number(config.get("provisionedConcurrency"))
    if provisioned:
        pc_price = float(serverless["provisionedConcurrencyPerGbSecond"])
        pc_gb_s = provisioned * memory_gb * hours * 3600
        items.append(
            LineItem(
                "serverless",
                endpoint,
                f"{vname}: {int(provisioned)} provisioned concurrency, always on",
                pc_gb_s,
                "GB-seconds",
                pc_price,
                pc_gb_s * pc_price,
            )
        )
    return items


def _purpose(bucket: Resource) -> str:
    tags = bucket.props.get("tags")
    if isinstance(tags, Mapping) and isinstance(purpose := tags.get("purpose"), str):
        return purpose
    text = f"{bucket.name} {bucket.props.get('bucket') or ''}".lower()
    for purpose in ("access-logs", "capture", "artifacts", "data"):
        if purpose in text:
            return purpose
    return "default"
