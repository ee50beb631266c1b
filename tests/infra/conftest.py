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
