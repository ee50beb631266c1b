"""Bad stack files: each refused by `mlops preview` with exit 2 and one line naming the problem,
before any resource is declared. (AWS rules and sources: kernel/stack_config.py; this table proves the
refusal path, not the rules.)"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import pytest
import yaml
from badinput_kit import assert_refused, dump, run_mlops

REPO = Path(__file__).resolve().parents[2]
BASE = yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())
DEL = object()
NAN, INF = math.nan, math.inf

# (config path, bad value): each is a single change to the dev stack.
VALUES = {
    "region-unknown": (["aws:region"], "mars-1"),
    "env-unknown": (["mlops:environment"], "qa"),
    "models-empty": (["mlops:models"], []),
    "model-name-bad": (["mlops:models"], ["Churn_Model!"]),
    "models-not-list": (["mlops:models"], "churn"),
    "instance-not-allowed": (["mlops:training", "defaultInstanceType"], "ml.p5.48xlarge"),
    "allowed-empty": (["mlops:training", "allowedInstanceTypes"], []),
    "allowed-unknown": (["mlops:training", "allowedInstanceTypes"], ["ml.fake.xlarge"]),
    "spot-string": (["mlops:training", "spot"], "yes"),
    "runtime-negative": (["mlops:training", "maxRuntimeSeconds"], -1),
    "runtime-nan": (["mlops:training", "maxRuntimeSeconds"], NAN),
    "runtime-inf": (["mlops:training", "maxRuntimeSeconds"], INF),
    "runtime-huge": (["mlops:training", "maxRuntimeSeconds"], 10**12),
    "wait-less-than-runtime": (["mlops:training", "maxWaitSeconds"], 10),
    "runtime-string": (["mlops:training", "maxRuntimeSeconds"], "7200s"),
    "runtime-bool": (["mlops:training", "maxRuntimeSeconds"], True),
    "serving-mode": (["mlops:serving", "mode"], "gpu"),
    "serverless-mem": (["mlops:serving", "serverlessMemoryMb"], 3000),
    "serverless-mem-nan": (["mlops:serving", "serverlessMemoryMb"], NAN),
    "serverless-conc-0": (["mlops:serving", "serverlessMaxConcurrency"], 0),
    "serverless-conc-huge": (["mlops:serving", "serverlessMaxConcurrency"], 100000),
    "rollout-type": (["mlops:serving", "rollout", "type"], "big_bang"),
    "bake-negative": (["mlops:serving", "rollout", "bakeSeconds"], -5),
    "capture-101": (["mlops:serving", "dataCaptureSamplingPercent"], 101),
    "capture-nan": (["mlops:serving", "dataCaptureSamplingPercent"], NAN),
    "gate-metric": (["mlops:gate", "metric"], "auc"),
    "gate-improvement-nan": (["mlops:gate", "minImprovement"], NAN),
    "gate-improvement-inf": (["mlops:gate", "minImprovement"], -INF),
    "gate-minimum-unknown": (["mlops:gate", "minimums"], {"speed": 0.5}),
    "gate-minimum-nan": (["mlops:gate", "minimums"], {"roc_auc": NAN}),
    "email-bad": (["mlops:monitoring", "alertEmail"], "not-an-email"),
    "latency-0": (["mlops:monitoring", "latencyP99Ms"], 0),
    "latency-inf": (["mlops:monitoring", "latencyP99Ms"], INF),
    "errors-negative": (["mlops:monitoring", "error5xxThreshold"], -1),
    "drift-nan": (["mlops:monitoring", "driftThreshold"], NAN),
    "drift-negative": (["mlops:monitoring", "driftThreshold"], -0.1),
    "budget-inf": (["mlops:monitoring", "monthlyBudgetUsd"], INF),
    "budget-negative": (["mlops:monitoring", "monthlyBudgetUsd"], -300),
    "budget-string": (["mlops:monitoring", "monthlyBudgetUsd"], "lots"),
    "log-days-7.5": (["mlops:retention", "logDays"], 7.5),
    "log-days-13": (["mlops:retention", "logDays"], 13),
    "artifact-days-0": (["mlops:retention", "artifactDays"], 0),
    "capture-days-negative": (["mlops:retention", "captureDays"], -30),
    "tag-key-bad": (["mlops:tags"], {"a" * 200: "x"}),
    "tags-not-map": (["mlops:tags"], ["owner"]),
    "repo-bad": (["mlops:github", "repository"], "not a repo"),
    "enforcement-bad": (["mlops:policy", "defaultEnforcement"], "strict"),
    "approved-bad-arn": (["mlops:approvedPackages"], {"churn": "arn:aws:s3:::nope"}),
    "approved-unknown-model": (["mlops:approvedPackages"], {"fraud": ""}),
    "training-missing": (["mlops:training"], DEL),
    "serving-not-map": (["mlops:serving"], "fast"),
    "unknown-key": (["mlops:trainnig"], {}),
}

BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(f"{c}: &{c} [{','.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True))
    + "config:\n  mlops:environment: *i\n"
)
RAW = {
    "not-utf8": (b"config:\n  mlops:environment: d\xffv\n", "not UTF-8"),
    "utf16": ("config:\n  mlops:environment: dev\n".encode("utf-16"), "not UTF-8"),
    "alias-bomb": (BOMB.encode(), "alias bomb"),
    "many-aliases": (("x: &x 1\nl: [" + ",".join(["*x"] * 200) + "]\nconfig: {}\n").encode(), "alias"),
    "too-big": (b"config:\n  mlops:environment: dev\n" + b"# padding\n" * 30_000, "at most"),
    "empty": (b"", "no 'config:' mapping"),
    "top-level-list": (b"- config\n", "no 'config:' mapping"),
    "config-list": (b"config:\n  - a\n", "no 'config:' mapping"),
    "not-yaml": (b"config:\n\tmlops:environment: dev\n", "not valid YAML"),
    "unclosed-quote": (b'config:\n  mlops:environment: "dev\n', "not valid YAML"),
    "undefined-alias": (b"config:\n  mlops:environment: *nowhere\n", "not valid YAML"),
    "python-tag": (b"config: !!python/object/apply:os.system ['true']\n", "not valid YAML"),
    "deep-nesting": (b"config:\n  x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "stack"),
}


def _variant(path: list[str], value) -> dict:
    document = copy.deepcopy(BASE)
    node = document["config"]
    for key in path[:-1]:
        node = node[key]
    if value is DEL:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return document


@pytest.mark.parametrize("case", sorted(VALUES))
def test_a_bad_value_is_refused(case, tmp_path, capsys):
    path, value = VALUES[case]
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_bytes(dump(_variant(path, value)))
    assert_refused(run_mlops(capsys, "preview", "--stack", stack, "--skip-preflight"), 2, "configuration error")


@pytest.mark.parametrize("case", sorted(RAW))
def test_a_bad_file_is_refused(case, tmp_path, capsys):
    data, says = RAW[case]
    stack = tmp_path / "Pulumi.bad.yaml"
    stack.write_bytes(data)
    assert_refused(run_mlops(capsys, "preview", "--stack", stack, "--skip-preflight"), 2, says)


TABLE_SIZE = len(VALUES) + len(RAW)
