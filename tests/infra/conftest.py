import functools

import pytest

from infra.preview import preview_stack

STACKS = ("dev", "staging", "prod", "local")
APPROVED = "arn:aws:sagemaker:us-east-1:123456789012:model-package/churn-staging/7"


@functools.cache
def _preview(stack: str, deployed: bool):
    overrides = {"mlops:approvedPackages": {"churn": APPROVED}} if deployed else None
    return preview_stack(stack, overrides)


@pytest.fixture(params=STACKS)
def shipped(request):
    """Each stack exactly as shipped (no model approved yet)."""
    return _preview(request.param, False)


@pytest.fixture(params=STACKS)
def deployed(request):
    """Each stack with a model package approved, so serving is declared."""
    return _preview(request.param, True)


@pytest.fixture
def preview_of():
    return _preview


@pytest.fixture
def registrations(monkeypatch) -> list[str]:
    """The type of every resource previews register from here on (a refused config registers none)."""
    from infra import preview as preview_module

    seen: list[str] = []
    original = preview_module.RecordingMonitor.RegisterResource
    monkeypatch.setattr(
        preview_module.RecordingMonitor,
        "RegisterResource",
        lambda self, request: seen.append(request.type) or original(self, request),
    )
    return seen
