"""The flow commands through typer's CliRunner: exit codes, one line per problem, JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchflow import __version__
from batchflow.cli.main import app

from .conftest import REPO, TUTORIAL

runner = CliRunner()

GOOD = """\
from batchflow import Job
job = Job("pipeline", pool="p", on_all_tasks_complete="terminatejob")
a = job.task("download", "/bin/true", wall_clock="1m")
job.task("process", "/bin/true", after=a, wall_clock="1m")
"""


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def good(tmp_path: Path) -> Path:
    path = tmp_path / "flow.py"
    path.write_text(GOOD)
    return path


def test_version() -> None:
    assert invoke("--version") == (0, f"batchflow {__version__}\n", "")


def test_help_lists_the_commands() -> None:
    code, out, _ = invoke("--help")
    assert code == 0
    for command in ("validate", "graph", "export"):
        assert command in out


def test_validate_clean_flow(good: Path) -> None:
    code, out, err = invoke("validate", str(good))
    assert code == 0
    assert "pipeline  2 tasks  2 levels  0 errors  0 warnings" in out
    assert err == ""


def test_validate_reports_every_error_on_stderr_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            [
                {"id": "a b", "commandLine": "x"},
                {"id": "c", "commandLine": "x", "dependsOn": {"taskIds": ["zz"]}},
                {"id": "d", "commandLine": "x", "constraints": {"retentionTime": "PT7D"}},
            ]
        )
    )
    code, out, err = invoke("validate", str(path))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 3
    assert all(line.startswith(f"error: {path}:") for line in lines)
    assert any("task 'd' constraints.retentionTime" in line and "P7D" in line for line in lines)
    assert "3 errors" in out


def test_validate_json_output(tmp_path: Path) -> None:
    code, out, _ = invoke(
        "validate",
        str(TUTORIAL / "flaky-task.json"),
        "--output",
        "json",
        "--job-id",
        "data-processing-job",
    )
    assert code == 2
    report = json.loads(out)
    assert report["valid"] is False
    assert report["jobs"][0]["id"] == "data-processing-job"
    [error] = report["errors"]
    assert (error["taskId"], error["field"], error["line"]) == (
        "flaky-task",
        "constraints.retentionTime",
        2,
    )


def test_validate_warnings_are_lines_with_file_and_line_and_exit_0() -> None:
    code, out, err = invoke("validate", str(TUTORIAL / "pipeline.json"))
    assert code == 0
    assert "missing-script" not in err
    lines = [line for line in out.splitlines() if line.startswith("warning: ")]
    assert lines
    # Each warning is one line that starts with file:line, like an error.
    assert any(
        line.startswith(f"warning: {TUTORIAL / 'pipeline.json'}:") and "process-data" in line
        for line in lines
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["validate", "nope.py"], "nope.py: no such file"),
        (["validate", "--bogus", "x"], "No such option: --bogus"),
        (["graph", "x.py", "--format", "svg"], "'svg' is not one of"),
        (["validate"], "Missing argument"),
        (["frobnicate"], "No such command"),
    ],
)
def test_bad_usage_is_one_line_and_exit_2(args: list[str], fragment: str) -> None:
    code, _, err = invoke(*args)
    assert code == 2
    assert fragment in err
    assert "Value error" not in err  # pydantic's prefix
    assert len(err.strip().splitlines()) == 1


def test_python_flow_error_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    path.write_text("from batchflow import Job\njob = Job('j')\njob.task('a', 'x', after='b')\n")
    code, _, err = invoke("validate", str(path))
    assert code == 2
    assert err.strip() == f"error: {path}:3: job 'j' task 'a' after: 'b' is not in job 'j'"


def test_graph_mermaid_and_text(good: Path) -> None:
    code, out, _ = invoke("graph", str(good))
    assert code == 0
    assert out == 'graph LR\n    n0["download"] --> n1["process"]\n'
    code, out, _ = invoke("graph", str(good), "--format", "text")
    assert "process  <- download" in out


def test_graph_refuses_an_invalid_flow(tmp_path: Path) -> None:
    path = tmp_path / "cycle.json"
    path.write_text(
        json.dumps(
            [
                {"id": "a", "commandLine": "x", "dependsOn": {"taskIds": ["b"]}},
                {"id": "b", "commandLine": "x", "dependsOn": {"taskIds": ["a"]}},
            ]
        )
    )
    code, out, err = invoke("graph", str(path))
    assert code == 2
    assert "dependencies form a cycle" in err
    assert out == ""


def test_export_job_document_and_task_array(good: Path, tmp_path: Path) -> None:
    code, out, _ = invoke("export", str(good))
    assert code == 0
    document = json.loads(out)
    assert document["id"] == "pipeline"
    assert document["usesTaskDependencies"] is True
    assert [t["id"] for t in document["tasks"]] == ["download", "process"]
    code, out, _ = invoke("export", str(good), "--tasks-only")
    assert [t["id"] for t in json.loads(out)] == ["download", "process"]
    code, out, _ = invoke("export", str(good), "--job-only")
    assert "tasks" not in json.loads(out)
    target = tmp_path / "out.json"
    code, out, _ = invoke("export", str(good), "-o", str(target))
    assert (code, out) == (0, "")
    assert json.loads(target.read_text())["id"] == "pipeline"


def test_export_to_an_unwritable_place_is_one_line(good: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    code, _, err = invoke("export", str(good), "-o", str(tmp_path / "a-file" / "x.json"))
    assert code == 2
    assert "cannot write" in err
    assert len(err.strip().splitlines()) == 1


def test_export_creates_the_folders_of_its_output(good: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "deeper" / "job.json"
    assert invoke("export", str(good), "-o", str(target))[0] == 0
    assert json.loads(target.read_text())["id"] == "pipeline"


def test_export_says_that_inputs_are_not_in_the_json(tmp_path: Path) -> None:
    path = tmp_path / "flow.py"
    path.write_text(
        "from batchflow import Job\njob = Job('j')\njob.task('a', 'x', inputs=['a.txt'])\n"
    )
    code, _, err = invoke("export", str(path))
    assert code == 0
    assert "inputs=/outputs=" in err


def test_secrets_never_reach_the_terminal(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    url = "https://acct.blob.core.windows.net/out?sv=2024&sig=SECRETSIG"
    path.write_text(
        json.dumps(
            [
                {
                    "id": "t",
                    "commandLine": "x",
                    "outputFiles": [
                        {
                            "filePattern": "*",
                            "destination": {"container": {"containerUrl": [url]}},
                            "uploadOptions": {"uploadCondition": "taskSuccess"},
                        }
                    ],
                }
            ]
        )
    )
    for output in ("json", "text"):
        code, out, err = invoke("validate", str(path), "-O", output)
        assert code == 2
        assert "sig=***" in out + err
        assert "SECRETSIG" not in out + err


def test_internal_errors_are_one_line_and_exit_3(
    monkeypatch: pytest.MonkeyPatch, good: Path
) -> None:
    import batchflow.loader

    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("oops")

    monkeypatch.setattr(batchflow.loader, "load", broken)
    code, _, err = invoke("validate", str(good))
    assert code == 3
    assert "internal error: ZeroDivisionError: oops" in err


def test_the_installed_command_runs_from_a_subprocess(good: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "batchflow", "validate", str(good)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "0 errors" in result.stdout


def test_the_cli_builds_only_the_command_it_runs() -> None:
    from batchflow.cli.main import app, app_for

    slim = app_for(["status", "job-1", "--output", "json"])
    assert [c.callback.__name__ for c in slim.registered_commands if c.callback] == ["status"]
    assert slim.registered_callback is app.registered_callback  # --debug, --version
    assert [g.name for g in app_for(["infra", "plan"]).registered_groups] == ["infra"]
    # help, no command, an unknown command: the whole application answers
    for args in (["--help"], [], ["--version"], ["frobnicate"]):
        assert app_for(args) is app


@pytest.mark.parametrize(
    ("args", "expected", "code"),
    [
        (["status", "--help"], "Usage: batchflow status [OPTIONS]", 0),
        (["status"], "batchflow status: error: Missing argument", 2),
        (["frobnicate"], "No such command 'frobnicate'", 2),
    ],
)
def test_the_real_command_line_with_one_command_built(
    args: list[str], expected: str, code: int
) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; sys.argv[0] = 'batchflow'; from batchflow.cli import entry; entry()",
            *args,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == code
    assert expected in result.stdout + result.stderr


def test_the_plain_progress_bar_draws_what_rich_draws() -> None:
    from batchflow.cli.output import bar

    assert bar(0, 4, failed=False, width=8) == " " * 8
    assert bar(1, 4, failed=False, width=8) == "━━" + " " * 6
    assert bar(1, 3, failed=False, width=8) == "━━╸" + " " * 5  # 2.67 cells: a half cell
    assert bar(4, 4, failed=False, width=8) == "━" * 8
    assert bar(0, 0, failed=False, width=8) == " " * 8  # an empty job
    on = bar(1, 2, failed=True, width=4, on=True)
    assert on == "\033[31m━━\033[0m\033[38;5;237m━━\033[0m"  # red once a task failed
    assert bar(2, 2, failed=False, width=4, on=True) == "\033[32m━━━━\033[0m"
    # the cells rich's ProgressBar draws (it drops the trailing blanks of a lone bar)
    import io

    from rich.console import Console
    from rich.progress_bar import ProgressBar

    for total in (1, 2, 3, 7, 13, 100, 1001):
        for done in range(0, total + 1, max(1, total // 17)):
            drawn = io.StringIO()
            Console(file=drawn, width=40, color_system=None).print(
                ProgressBar(total=total, completed=done, width=40), end=""
            )
            assert bar(done, total, failed=False).rstrip() == drawn.getvalue().rstrip()


def test_styles_only_on_a_terminal_that_takes_them(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    from batchflow.cli import output

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(output.sys, "stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert output.colour()
    monkeypatch.setenv("NO_COLOR", "1")
    assert not output.colour()
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert not output.colour()
    monkeypatch.setattr(output.sys, "stdout", io.StringIO())
    monkeypatch.setenv("TERM", "xterm")
    assert not output.colour()
