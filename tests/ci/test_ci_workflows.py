"""The CI/CD pipeline GitHub runs: every step a command a person can run, and safe to run.

Checks the workflow files themselves: each `run` step is set-up or an `mlops`/`pulumi`
command (and every `mlops` invocation parses with the real CLI), no workflow input is spliced
into a shell script, AWS is reached only through OIDC from a GitHub environment the stack's
deployer role trusts, and deployment goes dev -> staging -> prod.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((REPO / ".github" / "workflows").glob("*.yml"))
SETUP = re.compile(r"^(python -m venv|\.venv/bin/pip |for |done|do$|if |fi$|then|else|args=|args\+=|code=|echo |#)")


def load(path: Path) -> dict:
    doc = yaml.safe_load(path.read_text())
    doc["on"] = doc.pop(True, doc.get("on"))  # YAML 1.1 reads `on:` as True
    return doc


def steps():
    for path in WORKFLOWS:
        for job_name, job in load(path)["jobs"].items():
            for step in job.get("steps", []):
                yield path.name, job_name, job, step


def test_there_is_a_pipeline():
    assert {p.name for p in WORKFLOWS} >= {
        "checks.yml",
        "train.yml",
        "approve.yml",
        "promote.yml",
        "deploy.yml",
        "pulumi-up.yml",
        "monitor.yml",
        "drift.yml",
    }


def test_every_run_step_is_set_up_or_an_mlops_or_pulumi_command():
    for name, job_name, _, step in steps():
        if "run" not in step:
            continue
        commands = [ln.strip() for ln in step["run"].splitlines() if ln.strip()]
        meaningful = [c for c in commands if not SETUP.match(c)]
        for command in meaningful:
            assert re.search(r"(^|\s|/)(mlops|pulumi)\s", command) or command.startswith(
                ".venv/bin/python -m pytest"
            ), f"{name}/{job_name}: {command!r} is neither set-up nor an mlops/pulumi command"


def test_no_workflow_input_is_spliced_into_a_shell_script():
    for name, job_name, _, step in steps():
        assert "${{" not in step.get("run", ""), f"{name}/{job_name}: pass expressions through env, not into the script"


def mlops_invocations():
    for name, _, _, step in steps():
        for line in step.get("run", "").splitlines():
            if ".venv/bin/mlops " in line:
                text = line.split(".venv/bin/mlops ", 1)[1]
                text = re.split(r"\s(>|\|\||\|)\s", text)[0]
                text = re.sub(r'"\$\{args\[@\]\}"', "", text)
                text = re.sub(r'"?\$[A-Z_]+"?', "x", text)
                yield name, shlex.split(text)


@pytest.mark.parametrize(
    "name,argv", list(mlops_invocations()), ids=lambda v: v if isinstance(v, str) else " ".join(v[:2])
)
def test_every_mlops_invocation_parses_with_the_real_cli(name, argv, monkeypatch):
    """The real parser reads the whole line; the command it names is found and not run."""
    import click

    from ci.cli import main

    ran = []
    monkeypatch.setattr(click.Command, "invoke", lambda self, ctx: ran.append(ctx.command_path) or 0)
    argv = ["approve" if a == "x" and i == 0 else a for i, a in enumerate(argv)]
    assert main(argv) == 0
    assert ran and ran[-1].startswith("mlops " + argv[0])


def test_aws_is_reached_only_through_oidc_from_a_trusted_environment():
    from infra.identity import approval_environment

    stack_envs = {
        yaml.safe_load((REPO / "stacks" / f"Pulumi.{s}.yaml").read_text())["config"]["mlops:github"]["environment"]
        for s in ("dev", "staging", "prod")
    }
    for path in WORKFLOWS:
        doc = load(path)
        for job_name, job in doc["jobs"].items():
            uses_aws = any("configure-aws-credentials" in s.get("uses", "") for s in job.get("steps", []))
            if not uses_aws:
                continue
            permissions = {**(doc.get("permissions") or {}), **(job.get("permissions") or {})}
            assert permissions.get("id-token") == "write", f"{path.name}/{job_name}: OIDC needs id-token: write"
            environment = job.get("environment")
            assert environment, f"{path.name}/{job_name}: AWS credentials only inside a GitHub environment"
            if "${{" not in environment:
                # a stack's own environment, or its approval environment (the approver role's)
                trusted = stack_envs | {approval_environment(e) for e in stack_envs}
                assert environment in trusted, f"{path.name}/{job_name}: {environment} is trusted by no deployer role"
            step = next(s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", ""))
            assert "role-to-assume" in step["with"] and "aws-access-key-id" not in step["with"]


def test_deployment_goes_dev_then_staging_then_prod():
    jobs = load(REPO / ".github" / "workflows" / "deploy.yml")["jobs"]
    assert [j["with"]["stack"] for j in jobs.values()] == ["dev", "staging", "prod"]
    assert jobs["staging"]["needs"] == "dev" and jobs["prod"]["needs"] == "staging"


def test_promotion_happens_through_a_pull_request_of_the_stack_file():
    doc = load(REPO / ".github" / "workflows" / "promote.yml")
    steps_ = doc["jobs"]["promote"]["steps"]
    assert any("mlops promote" in s.get("run", "") for s in steps_)
    pr = next(s for s in steps_ if "create-pull-request" in s.get("uses", ""))
    assert pr["with"]["add-paths"] == "stacks/Pulumi.${{ inputs.environment }}.yaml"
