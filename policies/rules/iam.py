"""IAM: least privilege for the roles the platform creates and the trust that lets anyone assume them."""

from __future__ import annotations

import re
from collections.abc import Iterable

from kernel.aws_model import UNKNOWN
from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import StackGraph, listify
from policies.records import Resource
from policies.rules.base import Collected, Finding, RuleFamily, say

IAM = RuleFamily("iam")

ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
POLICY = "aws:iam/policy:Policy"
USER_POLICY = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY = "aws:iam/groupPolicy:GroupPolicy"
ROLE_POLICY_ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT = "aws:iam/policyAttachment:PolicyAttachment"
USER_POLICY_ATTACHMENT = "aws:iam/userPolicyAttachment:UserPolicyAttachment"
GROUP_POLICY_ATTACHMENT = "aws:iam/groupPolicyAttachment:GroupPolicyAttachment"

IDENTITY_POLICY_TYPES = (ROLE, ROLE_POLICY, POLICY, USER_POLICY, GROUP_POLICY)
ATTACHMENT_TYPES = (ROLE_POLICY_ATTACHMENT, POLICY_ATTACHMENT, USER_POLICY_ATTACHMENT, GROUP_POLICY_ATTACHMENT)
BROAD_MANAGED_POLICY = re.compile(
    r"^arn:aws[a-z-]*:iam::aws:policy/(?:.*/)?(?:\w*FullAccess\w*|AdministratorAccess|PowerUserAccess)$"
)
TRAINING_ACTIONS = ("sagemaker:CreateTrainingJob", "sagemaker:CreateHyperParameterTuningJob")
PASS_ROLE = "iam:PassRole"
# Where identity policies live: a prop that, when it is an unreadable secret, blinds the IAM rules.
POLICY_DOCUMENT_PROPS = ("policy", "inlinePolicies")
TRUST_DOCUMENT_PROPS = ("assumeRolePolicy",)
GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
# Services whose role assumption carries aws:SourceAccount / aws:SourceArn, so a trust policy can (and
# must) pin them to this account: https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html,
# https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html
CONFUSED_DEPUTY_SERVICES = (
    "sagemaker.amazonaws.com",
    "scheduler.amazonaws.com",
    "states.amazonaws.com",
)
SOURCE_KEYS = ("aws:SourceAccount", "aws:SourceArn", "aws:SourceOrgID")


def identity_statements(resource: Resource, graph: StackGraph) -> Iterable[tuple[str, list[iam_docs.Statement]]]:
    """(where, statements) for each identity-policy document the resource carries.

    A role read from a state file reports its inline policies as outputs; those also managed by a
    separate RolePolicy resource are judged there, not twice.
    """
    if resource.canonical_type != ROLE:
        for _key, statements in iam_docs.statements_of(resource.props, "policy"):
            yield "policy", statements
        return
    managed_elsewhere = set()
    if "inlinePolicies" in resource.observed_only:
        for rp in graph.of_type(ROLE_POLICY):
            if graph.refers_to(rp, "role", resource, "name", "arn"):
                managed_elsewhere.add(str(rp.props.get("name") or ""))
    for inline in listify(resource.props.get("inlinePolicies")):
        if not isinstance(inline, dict) or str(inline.get("name") or "") in managed_elsewhere:
            continue
        parsed = iam_docs.parse(inline.get("policy"))
        if parsed is not None:
            yield f"inline policy '{inline.get('name') or ''}'", parsed


@IAM.resource(
    "iam-no-wildcard-action", severity="critical", types=IDENTITY_POLICY_TYPES, blind_spots=POLICY_DOCUMENT_PROPS
)
def iam_no_wildcard_action(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """No IAM policy allows Action '*' (or Allow with NotAction).

    Why: '*' grants every present and future AWS action: one compromised training container or CI token becomes an
    account administrator.

    Fix: list the actions the role needs (see infra/training.py and infra/identity.py for scoped examples).
    """
    for where, statements in identity_statements(resource, graph):
        for s in statements:
            if not s.allows:
                continue
            if any(iam_docs.is_full_wildcard(a) for a in s.actions):
                yield say(resource, f"{where} {s.label} allows Action '*'", "replace '*' with the specific actions")
            elif s.not_actions:
                yield say(
                    resource,
                    f"{where} {s.label} allows everything except {', '.join(s.not_actions)} (Allow with NotAction)",
                    "use Action with the specific actions instead of NotAction",
                )


@IAM.resource(
    "iam-no-wildcard-resource-write", severity="high", types=IDENTITY_POLICY_TYPES, blind_spots=POLICY_DOCUMENT_PROPS
)
def iam_no_wildcard_resource_write(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """No IAM policy allows write actions on Resource '*'.

    Why: A write action on '*' reaches every bucket, key, endpoint and model of every environment in the account, so dev
    credentials can change prod.

    Fix: name the environment's ARNs (buckets, key, endpoints by prefix). Actions AWS only authorises on '*'
    (ecr:GetAuthorizationToken, cloudwatch:PutMetricData, ENI management) are exempt; scope them with a condition where
    one exists. iam:PassRole is judged by iam-passrole-scoped.
    """
    for where, statements in identity_statements(resource, graph):
        for s in statements:
            if not s.allows or s.not_actions:
                continue  # NotAction is the wildcard-action rule's finding
            on_star = "*" in s.resources or bool(s.not_resources)
            if not on_star or s.has_restricting_condition:
                continue
            writes = [
                a
                for a in s.actions
                if not iam_docs.is_full_wildcard(a)
                and iam_docs.is_write(a)
                and not iam_docs.needs_star(a)
                and a.lower() != PASS_ROLE.lower()  # iam-passrole-scoped's finding
            ]
            if writes:
                yield say(
                    resource,
                    f"{where} {s.label} allows {', '.join(writes)} on Resource '*'",
                    "list the ARNs of this environment's resources instead of '*'",
                )


@IAM.resource(
    "iam-no-full-access-policy",
    severity="high",
    types=(ROLE,) + ATTACHMENT_TYPES,
    blind_spots=("managedPolicyArns", "policyArn"),
)
def iam_no_full_access_policy(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """No role gets an AWS-managed *FullAccess, AdministratorAccess or PowerUserAccess policy.

    Why: AmazonSageMakerFullAccess and friends grant every SageMaker (and S3, ECR, IAM PassRole...) action on every
    resource: the most common over-grant in published MLOps templates.

    Fix: drop the managed policy and attach a RolePolicy with the actions and ARNs the role uses.
    """
    if resource.canonical_type == ROLE:
        arns = listify(resource.props.get("managedPolicyArns"))  # declared, or really attached (state)
    else:
        arns = [resource.props.get("policyArn")]
    for arn in arns:
        if isinstance(arn, str) and BROAD_MANAGED_POLICY.match(arn):
            policy = arn.rsplit("/", 1)[-1]
            yield say(resource, f"attaches the AWS-managed policy {policy}", "replace it with a scoped inline policy")


@IAM.resource("iam-trust-no-wildcard-principal", severity="critical", types=(ROLE,), blind_spots=TRUST_DOCUMENT_PROPS)
def iam_trust_no_wildcard_principal(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """No role trust policy lets Principal '*' assume the role.

    Why: A trust policy with Principal '*' lets any AWS account assume the role; conditions are easy to get wrong and
    are no substitute for naming the service or OIDC provider.

    Fix: trust the intended service (sagemaker.amazonaws.com) with aws:SourceAccount, or the GitHub OIDC provider with a
    repository subject.
    """
    for s in iam_docs.parse(resource.props.get("assumeRolePolicy")) or []:
        if s.allows and s.wildcard_principal:
            yield say(
                resource,
                f"trust policy {s.label} lets Principal '*' assume the role",
                "name the service principal or the OIDC provider instead",
            )


def _oidc_host(s: iam_docs.Statement) -> str:
    """The OIDC provider a federated statement trusts (`token.actions.githubusercontent.com`); '' for SAML."""
    host = ""
    for p in s.principals.get("Federated", ()):
        host = p.split("oidc-provider/", 1)[-1] if "oidc-provider/" in p else p
    return host


# A customized GitHub subject (repo, context, job_workflow_ref) that names one workflow file and
# leaves only its ref open: `repo:o/r:environment:dev:job_workflow_ref:o/r/.github/workflows/x.yml@*`.
_ONE_WORKFLOW_ANY_REF = re.compile(
    r"repo:(?P<repo>[^/:*?]+/[^/:*?]+):environment:[^:*?]+:job_workflow_ref:(?P=repo)/\.github/workflows/[^/*?@]+@\*"
)


def _any_branch_of_one_workflow(s: iam_docs.Statement, host: str, subject: str, environment: str | None) -> bool:
    """Dev may trust any branch of one workflow file, never a pull request; staging and prod pin the branch."""
    if environment in ("staging", "prod") or not _ONE_WORKFLOW_ANY_REF.fullmatch(subject):
        return False
    excluded = s.condition_values(f"{host}:sub", operators=("StringNotLike",))
    return any(x.endswith("@refs/pull/*") for x in excluded)


def _oidc_subject_problem(s: iam_docs.Statement, repository: str | None, environment: str | None = None) -> str:
    host = _oidc_host(s)
    granting = tuple(op for op in s.conditions if "Not" not in op)  # a StringNotLike narrows, it grants nothing
    subjects = s.condition_values(f"{host}:sub", operators=granting) if host else []
    if not subjects:
        return f"trusts {host or 'a federated provider'} without a condition on {host or '<provider>'}:sub"
    for subject in subjects:
        if subject in ("*", "repo:*") or re.fullmatch(r"repo:[^/:]+/\*(:.*)?", subject) or subject.startswith("*"):
            return f"trusts the OIDC subject '{subject}', which any repository can present"
        if any(c in subject for c in "*?") and not _any_branch_of_one_workflow(s, host, subject, environment):
            return (
                f"trusts the OIDC subject pattern '{subject}', which matches every branch, pull request and "
                "environment of the repository"
            )
        if subject.endswith(":pull_request"):
            return f"trusts the OIDC subject '{subject}', which any pull request (unreviewed code) presents"
        if host.endswith(GITHUB_OIDC_HOST) and repository and not subject.startswith(f"repo:{repository}:"):
            return f"trusts the OIDC subject '{subject}', not this stack's repository {repository}"
    return ""


@IAM.resource("iam-oidc-trust-subject", severity="critical", types=(ROLE,), blind_spots=TRUST_DOCUMENT_PROPS)
def iam_oidc_trust_subject(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Roles trusted through OIDC (GitHub Actions) pin the token subject to one context of this repository.

    Why: The GitHub OIDC provider issues tokens to every repository on GitHub: without a `sub` condition naming our
    repository and environment, any workflow anywhere can deploy to this account; a wildcard (`repo:o/r:*`) or the
    `pull_request` subject lets unreviewed code from any branch or pull request assume the role.

    Fix: add Condition StringEquals token.actions.githubusercontent.com:sub = 'repo:<owner>/<repo>:environment:<env>'
    (no wildcards, no ':pull_request'); outside staging and prod, a customized subject may leave only the ref of one
    named workflow file open (`...workflows/x.yml@*`) when a StringNotLike excludes pull requests' refs
    (`repo:<owner>/<repo>:*@refs/pull/*`).
    """
    for s in iam_docs.parse(resource.props.get("assumeRolePolicy")) or []:
        if not s.allows or not s.principals.get("Federated"):
            continue
        problem = _oidc_subject_problem(s, ctx.github_repository, ctx.environment)
        if problem:
            yield say(
                resource,
                f"trust policy {s.label} {problem}",
                "pin <provider>:sub to repo:<owner>/<repo>:environment:<env>",
            )


@IAM.resource("iam-oidc-trust-audience", severity="critical", types=(ROLE,), blind_spots=TRUST_DOCUMENT_PROPS)
def iam_oidc_trust_audience(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Roles trusted through OIDC require the token audience (`<provider>:aud`, sts.amazonaws.com for GitHub).

    Why: The audience says whom a token was minted for: without an `aud` condition, a token GitHub issued to another
    relying party (any service that accepts GitHub OIDC tokens) can be replayed to assume the role.

    Fix: add Condition StringEquals token.actions.githubusercontent.com:aud = 'sts.amazonaws.com'.
    """
    for s in iam_docs.parse(resource.props.get("assumeRolePolicy")) or []:
        host = _oidc_host(s) if s.allows else ""
        if not host or "oidc-provider/" not in "".join(s.principals.get("Federated", ())):
            continue  # SAML and non-federated statements carry no audience
        if f"{host}:aud".lower() not in s.restricting_keys():
            shown = s.condition_values(f"{host}:aud")
            problem = f"accepts any audience ({', '.join(shown)})" if shown else f"has no {host}:aud condition"
            yield say(
                resource,
                f"trust policy {s.label} {problem}",
                f"add Condition StringEquals {host}:aud = 'sts.amazonaws.com'",
            )


@IAM.resource("iam-service-trust-source", severity="high", types=(ROLE,), blind_spots=TRUST_DOCUMENT_PROPS)
def iam_service_trust_source(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Roles that AWS services assume pin the calling account with aws:SourceAccount or aws:SourceArn.

    Why: A service principal alone trusts that service acting for ANY account: another customer's SageMaker job given
    our role ARN would run as our role (the confused deputy). aws:SourceAccount / aws:SourceArn make the service prove
    it acts for this account.

    Fix: add Condition StringEquals aws:SourceAccount = <this account> (or ArnLike aws:SourceArn = the account's jobs)
    to the trust statement; see
    https://docs.aws.amazon.com/sagemaker/latest/dg/security-confused-deputy-prevention.html.
    """
    keys = {k.lower() for k in SOURCE_KEYS}
    for s in iam_docs.parse(resource.props.get("assumeRolePolicy")) or []:
        services = [p for p in s.principals.get("Service", ()) if p.lower() in CONFUSED_DEPUTY_SERVICES]
        if not s.allows or not services or s.restricting_keys() & keys:
            continue
        shown = [f"{k}={v}" for k in SOURCE_KEYS for v in s.condition_values(k)]
        detail = f" (the condition {', '.join(shown)} restricts nothing)" if shown else ""
        yield say(
            resource,
            f"trust policy {s.label} lets {', '.join(services)} assume the role for any account{detail}",
            "add Condition StringEquals aws:SourceAccount = this account",
        )


@IAM.stack("iam-role-policy-management-conflict", severity="medium", awsguard="iam-role-no-policy-management-conflicts")
def iam_role_policy_management_conflict(graph: StackGraph, ctx: PolicyContext) -> Iterable[Finding]:
    """A role whose inlinePolicies/managedPolicyArns are declared is not also managed by RolePolicy/attachments.

    Why: aws.iam.Role takes exclusive ownership of the policies it declares: a separate RolePolicy or
    RolePolicyAttachment on the same role is removed on the next update and re-added on the one after.

    Fix: manage a role's policies one way: either inline_policies/managed_policy_arns on the Role, or separate
    RolePolicy/RolePolicyAttachment resources.
    """
    out = Collected()
    roles = graph.of_type(ROLE)
    checks = (
        (ROLE_POLICY, "role", "inlinePolicies"),
        (ROLE_POLICY_ATTACHMENT, "role", "managedPolicyArns"),
        (POLICY_ATTACHMENT, "roles", "managedPolicyArns"),
    )
    for type_token, prop, exclusive in checks:
        for attachment in graph.of_type(type_token):
            refs = listify(attachment.props.get(prop))
            for role in roles:
                declared = listify(role.props.get(exclusive)) if exclusive not in role.observed_only else []
                if not declared:
                    continue
                names = {role.id, str(role.props.get("name") or ""), str(role.props.get("arn") or "")} - {""}
                linked = any(str(ref) in names for ref in refs if ref is not UNKNOWN) or (
                    any(ref is UNKNOWN for ref in refs) and role.urn in attachment.dependencies
                )
                if linked:
                    kind = type_token.rsplit(":", 1)[-1]
                    out.flag(
                        attachment,
                        f"{kind} manages role {role.name}, which also declares {exclusive}",
                        f"move the policy into the role's {exclusive} or remove {exclusive} from the role",
                    )
    return out.items


@IAM.resource("iam-training-instance-type-condition", severity="low", types=IDENTITY_POLICY_TYPES, pinned="advisory")
def iam_training_instance_type_condition(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """Policies that may start training jobs restrict instance types with a sagemaker:InstanceTypes condition.

    Why: The stack's GPU allowlist is only advice to the pipeline unless IAM enforces it: a role that may call
    CreateTrainingJob without the condition can start a p5.48xlarge job from any script.

    Fix: add Condition ForAllValues:StringEquals sagemaker:InstanceTypes = <training.allowedInstanceTypes> to statements
    that allow sagemaker:CreateTrainingJob.
    """
    for where, statements in identity_statements(resource, graph):
        for s in statements:
            if s.not_actions or any(iam_docs.is_full_wildcard(a) for a in s.actions):
                continue  # the wildcard-action rule's finding
            granted = [a for a in TRAINING_ACTIONS if iam_docs.grants(s, a)]
            if granted and not s.condition_values("sagemaker:InstanceTypes"):
                yield say(
                    resource,
                    f"{where} {s.label} allows {', '.join(granted)} on any instance type",
                    "add a ForAllValues:StringEquals sagemaker:InstanceTypes condition with the allowlist",
                )
