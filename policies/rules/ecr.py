"""ECR: the images that train and serve models are scanned, immutable and encrypted with our key."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from kernel.aws_model import UNKNOWN
from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import StackGraph, listify, truthy
from policies.records import Resource
from policies.rules.base import RuleFamily, say

ECR = RuleFamily("ecr")

REPOSITORY = "aws:ecr/repository:Repository"
REGISTRY_SCANNING = "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration"


@ECR.resource("ecr-scan-on-push", severity="medium", types=(REPOSITORY,))
def ecr_scan_on_push(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """ECR repositories scan images on push.

    Why: Training and inference images bundle CUDA, Python and model-serving stacks; scanning on push flags a
    known-vulnerable layer before it reaches an endpoint.

    Fix: set image_scanning_configuration={'scan_on_push': True} (or a registry-wide scanning configuration).
    """
    if graph.of_type(REGISTRY_SCANNING):
        return
    configs = [c for c in listify(resource.props.get("imageScanningConfiguration")) if isinstance(c, Mapping)]
    if not any(truthy(c.get("scanOnPush", False)) for c in configs):
        yield say(resource, "does not scan images on push", "set image_scanning_configuration scan_on_push=True")


@ECR.resource("ecr-immutable-tags", severity="high", types=(REPOSITORY,))
def ecr_immutable_tags(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """ECR repositories make image tags immutable.

    Why: Lineage pins images by tag and digest; with mutable tags a push can change what `:v3` means under a model that
    was evaluated and approved with another image.

    Fix: set image_tag_mutability='IMMUTABLE'.
    """
    mutability = resource.props.get("imageTagMutability", "MUTABLE")
    if mutability is not UNKNOWN and not str(mutability).upper().startswith("IMMUTABLE"):
        yield say(resource, f"image tags are {mutability}", "set image_tag_mutability='IMMUTABLE'")


@ECR.resource("ecr-kms-encryption", severity="medium", types=(REPOSITORY,))
def ecr_kms_encryption(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """ECR repositories encrypt images with a customer-managed KMS key.

    Why: Images can embed model weights and code; AES256 (ECR's default) or the AWS-managed key cannot be scoped to the
    environment or revoked.

    Fix: set encryption_configurations=[{'encryption_type': 'KMS', 'kms_key': <environment key ARN>}].
    """
    configs = [c for c in listify(resource.props.get("encryptionConfigurations")) if isinstance(c, Mapping)]
    if any(c.get("encryptionType") is UNKNOWN for c in configs):
        return
    kms = [c for c in configs if str(c.get("encryptionType", "")).upper().startswith("KMS")]
    if not kms:
        shown = configs[0].get("encryptionType") if configs else "AES256 (the default)"
        yield say(
            resource,
            f"encrypts images with {shown}, not a customer-managed KMS key",
            "set encryption_type 'KMS' with kms_key = the environment key",
        )
    elif not any(c.get("kmsKey") for c in kms):
        yield say(resource, "encrypts with the AWS-managed aws/ecr key", "set kms_key to the environment key ARN")


PUBLIC_REPOSITORY = "aws:ecrpublic/repository:Repository"
REPOSITORY_POLICY = "aws:ecr/repositoryPolicy:RepositoryPolicy"


@ECR.resource(
    "ecr-no-public-repository",
    severity="critical",
    types=(PUBLIC_REPOSITORY, REPOSITORY_POLICY),
    blind_spots=("policy",),
)
def ecr_no_public_repository(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Images are not published: no ECR Public repository, no repository policy open to Principal '*'.

    Why: Training and serving images carry our code, dependencies and sometimes model weights; an ECR Public repository
    (or a private one whose policy lets '*' pull) hands them to the internet, and a '*' push grant lets anyone replace
    the image an endpoint runs.

    Fix: use a private aws.ecr.Repository; in its RepositoryPolicy name this account's roles, or scope Principal '*'
    with aws:PrincipalOrgID / aws:PrincipalAccount.
    """
    if resource.canonical_type == PUBLIC_REPOSITORY:
        yield say(
            resource,
            f"publishes images in the public ECR gallery ({resource.props.get('repositoryName') or resource.id})",
            "use a private aws.ecr.Repository",
        )
        return
    for s in iam_docs.open_to_everyone(resource.props.get("policy")):
        yield say(
            resource,
            f"repository policy {s.label} allows {', '.join(s.actions) or 'actions'} to Principal '*'",
            "name this account's roles or add an aws:PrincipalOrgID condition",
        )
