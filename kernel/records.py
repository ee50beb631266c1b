"""The records the pipeline writes and reads back: one typed object each, parsed once where it is read.

A run record (`runs/<job>/run.json`, written by `mlops train`) is read by evaluate, register and
promote; an evaluation report (`evaluations/<job>/report.json`) by register and promote. Both are
documents on disk and in S3, so `to_dict()` gives back exactly the JSON that was read: the same keys
in the same order (fields are declared in the order the writers write them; extras follow in
theirs), nothing added (fields a record lacks stay unset and are not written), nothing
coerced (strict types). Keys added by later steps (`billableSeconds`, `streamedMetrics`,
`resumedFromJob`, ...) and open-ended maps (hyperparameters, metrics by metric name) are kept as
they came: `extra="allow"`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError


class RecordError(ValueError):
    """A record that does not have the shape its readers rely on; the message names the field."""


class Record(BaseModel):
    """Frozen, strict, open: later steps add keys, and every key survives a round trip."""

    # NaN stays NaN (a metric may be undefined): pydantic's JSON mode would write it as null.
    model_config = ConfigDict(frozen=True, strict=True, extra="allow", ser_json_inf_nan="constants")
    what: ClassVar[str] = "record"

    @classmethod
    def from_dict(cls, raw: dict[str, Any], where: str = "") -> Self:
        """Parse a record read from `where` (an S3 URI, a file); a malformed one names its fields."""
        try:
            return cls.model_validate(raw)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(record)'}: {e['msg']}" for e in err.errors())
            raise RecordError(f"{cls.what} {where}".rstrip() + f" is malformed: {problems}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: the keys it was read or built with, in their order."""
        return self.model_dump(mode="json", exclude_unset=True)


class RunRecord(Record):
    """`mlops train`'s record of one training job (declared in the order `new_run_record` writes them)."""

    what: ClassVar[str] = "run record"

    job: str
    mode: str | None = None  # "local" or "sagemaker"
    model: str
    stack: str | None = None
    status: str | None = None  # SageMaker's TrainingJobStatus: InProgress, Completed, Failed, Stopped
    failureReason: str = ""
    modelDataUrl: str
    instanceType: str | None = None
    imageUri: str | None = None
    imageDigest: str | None = None
    pinnedImage: str | None = None
    imageSource: str | None = None
    hyperparameters: dict[str, Any] = Field(default_factory=dict)  # open-ended: whatever the run was given
    seed: int | None = None
    spot: bool | None = None
    checkpointS3Uri: str | None = None
    dataset: dict[str, Any] = Field(default_factory=dict)  # the data set manifest (ci.steps.datasets.Manifest)
    git: dict[str, Any] = Field(default_factory=dict)  # commit, dirty, ...
    metrics: dict[str, Any] = Field(default_factory=dict)  # metric name -> final value
    metricDefinitions: list[dict[str, str]] = Field(default_factory=list)
    startedAt: str | None = None  # ISO 8601, UTC
    finishedAt: str | None = None


class Gate(Record):
    """The gate's verdict in a report: the stack's gate settings and `ml.evaluate.compare`'s result."""

    what: ClassVar[str] = "gate"

    metric: str | None = None
    margin: float | int | None = None  # as written (strict float would turn 0 into 0.0)
    minimums: dict[str, Any] = Field(default_factory=dict)
    passed: bool
    reason: str  # then candidate, champion, higher_is_better, failures: extras, in their order


class EvaluationReport(Record):
    """`mlops evaluate`'s report on one run. The model-quality section is keyed by the task
    (`binary_classification_metrics`, `regression_metrics`, ...), so it is an extra key."""

    what: ClassVar[str] = "evaluation report"

    job: str | None = None
    model: str | None = None
    stack: str | None = None
    modelDataUrl: str | None = None
    evaluatedAt: str | None = None
    testSet: dict[str, Any] = Field(default_factory=dict)
    candidate: dict[str, Any]  # {"metrics": {name: value}}: what register records
    champion: dict[str, Any] | None = None
    baseline: dict[str, Any] | None = None
    gate: Gate  # what register and promote decide on
    # then the model-quality section, and reportUri / reportVersionId where it was stored: extras, so
    # they keep their place after it

    @property
    def uri(self) -> str:
        """Where the report is stored (`reportUri`, added when it was written or read)."""
        return str((self.model_extra or {}).get("reportUri", ""))

    @property
    def candidate_metrics(self) -> dict[str, Any]:
        return dict(self.candidate.get("metrics") or {})
