"""Helpers shared by the delivery-pipeline tests (fixtures live in conftest.py)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
ACCOUNT = "123456789012"

DATA_URI = "s3://bucket/datasets/churn/v1/"  # what dry runs train on (never read)


def dry_run(mlops, command: str, *options: str, stack: str = "dev") -> dict:
    """The `--json` document of a successful `mlops <command> --dry-run` on the stack's offline preview."""
    result = mlops(
        command, "--stack", stack, "--outputs-from", "preview", "--data-uri", DATA_URI, *options, "--dry-run", "--json"
    )
    assert result.code == 0, result
    return result.json


def hp(*assignments: str) -> list[str]:
    """`--hp` options, one per `key=value`."""
    return [arg for assignment in assignments for arg in ("--hp", assignment)]


# The evaluation report's extras at their smallest: a few hundred rows for importance and the drift baseline.
QUICK_REPORT = ("importance_repeats=1", "importance_max_rows=200", "baseline_sample=500")
# Small, fast, good enough for the dev gate (roc_auc >= 0.70): gradient boosting on ~1k rows.
FAST_HP = hp("model=gbdt", "gbdt_max_iter=40", *QUICK_REPORT)


class CliResult:
    def __init__(self, code: int, out: str, err: str):
        self.code, self.out, self.err = code, out, err

    @property
    def json(self):
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"CliResult(code={self.code}, err={self.err[-2000:]!r})"


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every stack file's bytes, to assert that a refused step changed nothing."""
    return {p.name: p.read_bytes() for p in sorted(directory.glob("Pulumi.*.yaml"))}


def free_port() -> int:
    """A loopback port nothing listens on (for ml.serve, or an emulator that is not there)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def push_project_image(boto, stack: str = "dev", tag: str | None = None) -> str:
    """Put the project's image into the stack's ECR repository under the commit tag, as `mlops image`
    does (moto stores the manifest; no docker). Returns the digest training pins."""
    from ci.steps.image import image_tag

    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "digest": "sha256:" + "1" * 64,
            "size": 1,
            "mediaType": "application/vnd.docker.container.image.v1+json",
        },
        "layers": [],
    }
    from ci.steps.image import training_tag

    for each in (tag or image_tag(), training_tag(tag or image_tag())):  # serving and training tags
        pushed = boto("ecr").put_image(
            repositoryName=f"mlops-{stack}", imageManifest=json.dumps(manifest), imageTag=each
        )
    return pushed["image"]["imageId"]["imageDigest"]


# The docker client's stand-in (`mlops image` and the permission recordings run it).
FAKE_DOCKER = """#!{python}
# Stands in for the docker client: records each call; `push` puts a manifest into the emulator's ECR.
import json, os, sys
import boto3
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_LOG"], "a") as log:
    log.write(json.dumps({{"args": args, "stdin": sys.stdin.read() if args[0] == "login" else None}}) + "\\n")
if args[0] == "build" and os.environ.get("FAKE_DOCKER_FAIL"):
    print("COPY failed: file not found", file=sys.stderr); sys.exit(1)
if args[0] == "push":
    url, tag = args[1].rsplit(":", 1)
    ecr = boto3.client("ecr", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name="us-east-1")
    manifest = {{"schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {{"digest": "sha256:" + "1" * 64, "size": 1,
                            "mediaType": "application/vnd.docker.container.image.v1+json"}},
                "layers": []}}
    ecr.put_image(repositoryName=url.split("/", 1)[1], imageManifest=json.dumps(manifest), imageTag=tag)
"""
