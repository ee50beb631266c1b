"""Build and push the project's image (container/Dockerfile) to the environment's ECR repository.

One Dockerfile and one lock, two torch builds (the Dockerfile's TORCH_VARIANT build argument):
- the serving image, tagged with the git commit of the ML code (the tag `mlops register` looks
  for): a CPU torch build when the stack serves on CPU (serverless, ml.m5, ml.c5...), CUDA when
  its `mlops:serving.instanceType` is a GPU type (kernel.instances.is_gpu);
- the training image, `<commit>-cuda`: training types are GPU types. When serving is CUDA too it
  is the same image under a second tag, not a second build.
Images are built for linux/amd64 (SageMaker's x86 instances), whatever the builder's machine.
The repository has immutable tags, so an existing tag is reused rather than overwritten. The
digest ECR reports is what the model package and the training job pin.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ci.errors import MlopsError, UsageError
from ci.progress import QUIET, Progress
from ci.steps.lineage import git_state
from kernel.instances import is_gpu
from kernel.paths import REPO_ROOT
from kernel.stack_outputs import StackOutputs

if TYPE_CHECKING:
    from kernel.stack_config import StackConfig

DOCKERFILE = REPO_ROOT / "container" / "Dockerfile"
PLATFORM = "linux/amd64"  # SageMaker training and hosting instances are x86-64 (ml.g*, ml.p*, ml.m*, ml.c*)
TRAINING_SUFFIX = "-cuda"


def image_tag(commit: str | None = None) -> str:
    """The tag `mlops register` defaults to: the first 12 characters of the commit."""
    return (commit or git_state()["commit"])[:12]


def training_tag(tag: str) -> str:
    """The training image's tag beside a serving tag: always a CUDA build."""
    return tag + TRAINING_SUFFIX


def serving_variant(stack_config: StackConfig) -> str:
    """`cuda` when the stack serves on a GPU instance type, else `cpu` (serverless is CPU only)."""
    serving = stack_config.serving
    if serving.mode != "serverless" and is_gpu(serving.instanceType):
        return "cuda"
    return "cpu"


def build_command(docker: str, dockerfile: Path, uri: str, variant: str) -> list[str]:
    return [
        docker,
        "build",
        "-f",
        str(dockerfile),
        "-t",
        uri,
        "--platform",
        PLATFORM,
        "--build-arg",
        f"TORCH_VARIANT={variant}",
        str(REPO_ROOT),
    ]


def build_and_push(
    session,
    outputs: StackOutputs,
    *,
    tag: str | None = None,
    push: bool = True,
    docker: str = "docker",
    dockerfile: Path = DOCKERFILE,
    progress: Progress = QUIET,
    variant: str = "cpu",
) -> dict[str, Any]:
    """The serving image (torch `variant`) at `tag` and the CUDA training image at `tag`-cuda."""
    if shutil.which(docker) is None:
        raise UsageError(f"{docker!r} is not on PATH: install Docker (or pass --docker) to build the serving image")
    tag = tag or image_tag()
    serving = _build_push(session, outputs, tag, variant, push, docker, dockerfile, progress)
    same_image = variant == "cuda" and serving["digest"] is not None
    training = _build_push(
        session, outputs, training_tag(tag), "cuda", push, docker, dockerfile, progress,
        retag_from=serving["image"] if same_image else None,
    )  # fmt: skip
    return {**serving, "variant": variant, "training": training}


def _build_push(
    session,
    outputs: StackOutputs,
    tag: str,
    variant: str,
    push: bool,
    docker: str,
    dockerfile: Path,
    progress: Progress,
    retag_from: str | None = None,
) -> dict[str, Any]:
    repository = outputs.ecrRepositoryUrl.split("/", 1)[1]
    uri = f"{outputs.ecrRepositoryUrl}:{tag}"
    ecr = session.client("ecr")

    existing = _digest(ecr, repository, tag)
    if existing:
        progress.step(f"{uri} already in ECR ({existing}): immutable tags, nothing to push")
        return {"image": uri, "digest": existing, "pushed": False}

    if retag_from:
        progress.step(f"tagging {retag_from} as {uri} (the CUDA serving image trains too)")
        _run([docker, "tag", retag_from, uri])
    else:
        progress.step(f"building {uri} ({variant} torch, {PLATFORM}) from {dockerfile.relative_to(REPO_ROOT)}")
        _run(build_command(docker, dockerfile, uri, variant))
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
