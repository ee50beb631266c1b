"""IAM privilege escalation: roles that may hand any role to any service, or rewrite their own permissions.

Both turn one compromised credential into more: PassRole on every role lets a pipeline token start a
SageMaker job as the most privileged role in the account; a role that may edit its own policies,
trust or boundary has, in effect, no limits at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from policies import iam_docs
from policies.context import PolicyContext
from policies.graph import StackGraph
from policies.records import Resource
from policies.rules.base import say
from policies.rules.iam import (
    IAM,
    IDENTITY_POLICY_TYPES,
    PASS_ROLE,
    POLICY_DOCUMENT_PROPS,
    ROLE,
    ROLE_POLICY,
    identity_statements,
)

# Actions that change what a role may do or who may assume it.
SELF_MODIFYING_ACTIONS = (
    "iam:PutRolePolicy",
    "iam:AttachRolePolicy",
    "iam:UpdateAssumeRolePolicy",
    "iam:DeleteRolePermissionsBoundary",
    "iam:PutRolePermissionsBoundary",
)
_ANY_ROLE_NAME = "a-role-nobody-named-0f3c"  # a pattern that matches this name matches every role


def _any_role_arn(graph: StackGraph) -> str:
    return f"arn:aws:iam::{graph.account_id or '123456789012'}:role/{_ANY_ROLE_NAME}"


def _matches_every_role(patterns: tuple[str, ...], graph: StackGraph) -> bool:
    return any(iam_docs.action_matches(p, _any_role_arn(graph)) for p in patterns)


def _skip(s: iam_docs.Statement) -> bool:
    """Statements the wildcard-action rule already reports (Action '*' or Allow with NotAction)."""
    return not s.allows or bool(s.not_actions) or any(iam_docs.is_full_wildcard(a) for a in s.actions)


@IAM.resource("iam-passrole-scoped", severity="high", types=IDENTITY_POLICY_TYPES, blind_spots=POLICY_DOCUMENT_PROPS)
def iam_passrole_scoped(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """iam:PassRole names the roles it passes and the service it passes them to (iam:PassedToService).

    Why: PassRole is how a principal lends a role to a service: on Resource '*' (or role/*) a pipeline token can start a
    training job as any role in the account, including the deploy role; without iam:PassedToService the execution role
    can be handed to EC2, Lambda or Glue and used outside SageMaker.

    Fix: Resource = the execution role ARN(s); Condition StringEquals iam:PassedToService = 'sagemaker.amazonaws.com'
    (infra/identity.py's PassOnlyTheExecutionRole statement).
    """
    for where, statements in identity_statements(resource, graph):
        for s in statements:
            if _skip(s) or not iam_docs.grants(s, PASS_ROLE):
                continue
            problems = []
            if bool(s.not_resources) or _matches_every_role(s.resources, graph):
                problems.append(f"on every role ({', '.join(s.resources or s.not_resources)})")
            if "iam:passedtoservice" not in s.restricting_keys():
                problems.append("to any service (no iam:PassedToService condition)")
            if problems:
                yield say(
                    resource,
                    f"{where} {s.label} allows iam:PassRole {' and '.join(problems)}",
                    "name the execution role ARN and add StringEquals iam:PassedToService",
                )


def _own_role_arns(resource: Resource, graph: StackGraph) -> list[str]:
    """The ARNs of the role(s) a policy document governs: the role itself, or the role a RolePolicy names."""
    roles = [resource] if resource.canonical_type == ROLE else []
    if resource.canonical_type == ROLE_POLICY:
        roles = [r for r in graph.of_type(ROLE) if graph.refers_to(resource, "role", r, "name", "arn")]
    arns = []
    for role in roles:
        arn = role.props.get("arn")
        name = role.props.get("name")
        if isinstance(arn, str):
            arns.append(arn)
        elif isinstance(name, str) and graph.account_id:
            arns.append(f"arn:aws:iam::{graph.account_id}:role/{name}")
    return arns


@IAM.resource(
    "iam-no-self-modification", severity="critical", types=IDENTITY_POLICY_TYPES, blind_spots=POLICY_DOCUMENT_PROPS
)
def iam_no_self_modification(resource: Resource, ctx: PolicyContext, graph: StackGraph) -> Iterable[str]:
    """No role may rewrite its own policies, trust policy or permissions boundary (nor those of every role).

    Why: A role allowed iam:PutRolePolicy, AttachRolePolicy, UpdateAssumeRolePolicy or Put/DeleteRolePermissionsBoundary
    on itself (or on role/*) can grant itself AdministratorAccess, let anyone assume it or drop its boundary: every
    other limit on it is advisory.

    Fix: remove the action, or scope it to other roles by exact ARN and keep the deploy role's boundary denying changes
    to itself (DESIGN 8: the deploy role cannot change itself).
    """
    own = _own_role_arns(resource, graph)
    for where, statements in identity_statements(resource, graph):
        for s in statements:
            if _skip(s):
                continue
            granted = [a for a in SELF_MODIFYING_ACTIONS if iam_docs.grants(s, a)]
            if not granted:
                continue
            if bool(s.not_resources) or _matches_every_role(s.resources, graph):
                target = "every role"
            elif any(iam_docs.action_matches(p, arn) for p in s.resources for arn in own):
                target = "its own role"
            else:
                continue
            yield say(
                resource,
                f"{where} {s.label} allows {', '.join(granted)} on {target} ({', '.join(s.resources)})",
                "remove the action or name other roles' ARNs exactly",
            )
