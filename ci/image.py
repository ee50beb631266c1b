"""Build and push the serving image (container/Dockerfile) to the environment's ECR repository.

The tag is the git commit of the ML code, the tag `mlops register` looks for; the repository
has immutable tags, so an existing tag is reused rather than overwritten. The digest ECR
reports is what the model package pins.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

from ci.errors import MlopsError, UsageError
from ci.lineage import REPO_ROOT, git_state
from ci.progress import QUIET, Progress
from infra.contract import StackOutputs

DOCKERFILE = REPO_ROOT / "container" / "Dockerfile"


def image_tag(commit: str | None = None) -> str:
    """The tag `mlops register` defaults to: the first 12 characters of the commit."""
    return (commit or git_state()["commit"])[:12]


def build_and_push(
    session,
    outputs: StackOutputs,
    *,
    tag: str | None = None,
    push: bool = True,
    docker: str = "docker",
    dockerfile: Path = DOCKERFILE,
    progress: Progress = QUIET,
) -> dict[str, Any]:
    if shutil.which(docker) is None:
        raise UsageError(f"{docker!r} is not on PATH: install Docker (or pass --docker) to build the serving image")
    tag = tag or image_tag()
    repository = outputs.ecrRepositoryUrl.split("/", 1)[1]
    uri = f"{outputs.ecrRepositoryUrl}:{tag}"
    ecr = session.client("ecr")

    existing = _digest(ecr, repository, tag)
    if existing:
        progress.step(f"{uri} already in ECR ({existing}): immutable tags, nothing to push")
        return {"image": uri, "digest": existing, "pushed": False}

    progress.step(f"building {uri} from {dockerfile.relative_to(REPO_ROOT)}")
    _run([docker, "build", "-f", str(dockerfile), "-t", uri, str(REPO_ROOT)])
    if not push:
        return {"image": uri, "digest": None, "pushed": False}

    auth = ecr.get_authorization_token()["authorizationData"][0]
    user, password = base64.b64decode(auth["authorizationToken"]).decode().split(":", 1)
    _run([docker, "login", "--username", user, "--password-stdin", auth["proxyEndpoint"]], stdin=password)
    progress.step(f"pushing {uri}")
    _run([docker, "push", uri])
    digest = _digest(ecr, repository, tag)
    if not digest:
        raise MlopsError(f"pushed {uri} but ECR does not list it; check the repository {repository}")
    return {"image": uri, "digest": digest, "pushed": True}


def _digest(ecr, repository: str, tag: str) -> str | None:
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ecr.exceptions.ImageNotFoundException:
        return None
    return found[0]["imageDigest"] if found else None


def _run(argv: list[str], stdin: str | None = None) -> None:
    done = subprocess.run(argv, input=stdin, text=True, capture_output=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise MlopsError(f"`{' '.join(argv[:2])}` failed ({done.returncode}): {' / '.join(tail)}")
