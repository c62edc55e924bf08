"""The CD pipeline example (`examples/ci/github-actions.yml`) cannot silently rot: it is the
workflow the README describes, every `batchflow` flag it uses exists, and its `pulumi` and
`batchflow` steps, run as GitHub runs them (`bash -eo pipefail`), end with the exit codes
it promises: a stand-in `pulumi` for the stack, `batchflow emulator` for the account."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from batchflow.emulator.server import EmulatorHandle

from .conftest import REPO

WORKFLOW = REPO / "examples" / "ci" / "github-actions.yml"
SUBMIT = (
    "batchflow submit flows/nightly.py --stack-outputs outputs.json --output json > result.json"
)


def workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    assert isinstance(loaded, dict)
    return loaded


def steps() -> list[dict[str, Any]]:
    return list(workflow()["jobs"]["nightly"]["steps"])


def step(name: str) -> dict[str, Any]:
    found = [s for s in steps() if s.get("name") == name]
    assert len(found) == 1, f"no single step named {name!r}"
    return found[0]


def uses(action: str) -> dict[str, Any]:
    found = [s for s in steps() if str(s.get("uses", "")).split("@")[0] == action]
    assert len(found) == 1, f"no single step uses {action}"
    return found[0]


def readme_block(first_line: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(first_line)
    return text[start : text.index("```", start)]


def test_the_example_is_not_a_workflow_of_this_repository() -> None:
    assert not (REPO / ".github" / "workflows" / WORKFLOW.name).exists()


def test_it_signs_in_with_oidc_and_no_secret_but_pulumis() -> None:
    flow = workflow()
    assert flow["permissions"]["id-token"] == "write"
    login = uses("azure/login")["with"]
    assert set(login) == {"client-id", "tenant-id", "subscription-id"}
    up = step("pulumi up")
    assert up["env"]["ARM_USE_OIDC"] == "true"
    assert {"ARM_CLIENT_ID", "ARM_TENANT_ID", "ARM_SUBSCRIPTION_ID"} <= set(up["env"])
    secrets = [line for line in WORKFLOW.read_text().splitlines() if "secrets." in line]
    assert [s.split(":")[0].strip() for s in secrets] == ["PULUMI_ACCESS_TOKEN"]


def test_the_steps_run_in_the_order_the_readme_documents() -> None:
    names = [s.get("name") or s["uses"].split("@")[0] for s in steps()]
    order = [
        "Install the Pulumi CLI",
        "pulumi up",
        "Save the stack outputs",
        "Sign in to Azure (OIDC)",
        "batchflow submit",
        "Keep the result",
    ]
    assert [n for n in names if n in order] == order
    assert "command" not in (uses("pulumi/actions").get("with") or {})  # install only
    assert step("pulumi up")["run"] == 'pulumi up --yes --stack "$STACK"'
    assert step("Save the stack outputs")["run"] == (
        'pulumi stack output --json --stack "$STACK" > outputs.json'
    )
    assert workflow()["env"]["STACK"] == "${{ inputs.stack || 'dev' }}"


def test_the_submit_step_is_the_readmes_and_fails_the_job_on_a_failed_task() -> None:
    submit = step("batchflow submit")
    assert submit["run"] == SUBMIT
    assert "continue-on-error" not in submit and "shell" not in submit  # bash -eo pipefail
    readme = (REPO / "README.md").read_text()
    assert SUBMIT in " ".join(readme.split())
    assert "examples/ci/github-actions.yml" in readme
    assert "# flows/nightly.py" in readme
    keep = step("Keep the result")
    assert keep["if"] == "always()"
    assert keep["with"]["path"] == "result.json"


def cli_options(command: Any) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts)}


def test_every_batchflow_flag_of_the_workflow_exists() -> None:
    import typer.main

    from batchflow.cli.main import app
    from batchflow.cli.target import hoist

    group: Any = typer.main.get_command(app)
    lines = [
        line.strip()
        for s in steps()
        for line in str(s.get("run", "")).splitlines()
        if line.strip().startswith("batchflow ")
    ]
    assert lines
    for line in lines:
        words = shlex.split(line)
        for stop in (">", "|", "&&", ";", "||"):
            if stop in words:
                words = words[: words.index(stop)]
        args = hoist(words[1:])
        i = 0
        while args[i].startswith("-"):
            assert args[i].split("=")[0] in cli_options(group), line
            i += 1 if "=" in args[i] else 2
        command = group.commands[args[i]]
        for arg in args[i + 1 :]:
            if arg.startswith("-"):
                assert arg.split("=")[0] in cli_options(command), f"{line}: {arg}"


# -- the steps, run ------------------------------------------------------------------------

FAILING = """\
from batchflow import Job

job = Job("nightly-broken", pool="main", on_all_tasks_complete="terminatejob")
job.task("a", "/bin/sh -c 'echo disk full >&2; exit 3'", wall_clock="1m")
job.task("b", "/bin/echo fine", wall_clock="1m")
"""


def run_steps(folder: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The pulumi and batchflow steps, one `bash -eo pipefail` each as GitHub runs them;
    the last one's result (they stop at the first that fails)."""
    done: subprocess.CompletedProcess[str] | None = None
    for name in ("pulumi up", "Save the stack outputs", "batchflow submit"):
        done = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step(name)["run"]],
            cwd=folder,
            env={**env, **{k: str(v) for k, v in (step(name).get("env") or {}).items()}},
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        assert "Traceback" not in done.stderr, done.stderr
        if done.returncode:
            break
    assert done is not None
    return done


@pytest.fixture
def pipeline(batch_emulator: EmulatorHandle, tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A checkout with the README's nightly flow, a `pulumi` whose stack is the emulator
    (pool `main` of its `poolIds` is the emulator's `pool`), and `batchflow` on PATH. The
    key stands in for `azure/login` (plain http takes no token)."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "nightly.py").write_text(readme_block("# flows/nightly.py"))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    outputs = {
        "batchAccountName": batch_emulator.account_name,
        "batchAccountEndpoint": batch_emulator.endpoint,
        "poolIds": {"main": "pool"},
    }
    (bin_dir / "pulumi").write_text(
        "#!/bin/sh\n"
        'echo "$@" >> "$(dirname "$0")/pulumi.log"\n'
        f'if [ "$1 $2" = "stack output" ]; then echo {shlex.quote(json.dumps(outputs))}; fi\n'
    )
    (bin_dir / "batchflow").write_text(f'#!/bin/sh\nexec {sys.executable} -m batchflow "$@"\n')
    for tool in ("pulumi", "batchflow"):
        (bin_dir / tool).chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_", "BATCHFLOW_"))}
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=str(REPO),
        STACK="dev",
        AZURE_BATCH_ACCESS_KEY=batch_emulator.account_key,
    )
    return tmp_path, env


def test_the_pipeline_succeeds_when_every_task_does(
    pipeline: tuple[Path, dict[str, str]],
) -> None:
    folder, env = pipeline
    done = run_steps(folder, env)
    assert done.returncode == 0, done.stderr
    assert (folder / "bin" / "pulumi.log").read_text().splitlines() == [
        "up --yes --stack dev",
        "stack output --json --stack dev",
    ]
    result = json.loads((folder / "result.json").read_text())
    assert result["succeeded"] is True
    assert result["jobs"][0]["counts"]["succeeded"] == 9


def test_the_pipeline_fails_on_a_failed_task_and_the_result_names_it(
    pipeline: tuple[Path, dict[str, str]],
) -> None:
    folder, env = pipeline
    (folder / "flows" / "nightly.py").write_text(FAILING)
    done = run_steps(folder, env)
    assert done.returncode == 1, done.stderr
    result = json.loads((folder / "result.json").read_text())
    assert result["succeeded"] is False
    failed = result["jobs"][0]["failed"]
    assert [(f["id"], f["exitCode"]) for f in failed] == [("a", 3)]
    assert env["AZURE_BATCH_ACCESS_KEY"] not in done.stdout + done.stderr
