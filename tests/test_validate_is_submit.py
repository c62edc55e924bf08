"""validate catches what submit would refuse and what Batch would, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchflow import Job
from batchflow.cli.main import app
from batchflow.validation import validate

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


MISSING_INPUT = """\
from batchflow import Job
job = Job("j", pool="p", on_all_tasks_complete="terminatejob")
job.task("process-data", "python3 process.py", inputs=["process.py"], wall_clock="1m")
"""


def test_a_missing_input_fails_validate_and_submit_with_the_same_line(tmp_path: Path) -> None:
    flow = write(tmp_path / "flow.py", MISSING_INPUT)
    code, _, validate_err = invoke("validate", str(flow))
    assert code == 2
    code, _, submit_err = invoke("submit", str(flow), "--state-dir", str(tmp_path / "state"))
    assert code == 2
    line = f"error: {flow}:3: job 'j' task 'process-data' inputs: input 'process.py' does not exist"
    assert validate_err.startswith(line)
    assert submit_err.startswith(line)
    assert validate_err.splitlines()[0] == submit_err.splitlines()[0]


def test_tasks_sharing_a_missing_input_are_one_error_with_a_count(tmp_path: Path) -> None:
    flow = write(
        tmp_path / "flow.py",
        "from batchflow import Job\njob = Job('j', pool='p')\n"
        "job.map('t-{i}', 'x {i}', i=range(5), inputs=['nope.txt'])\n",
    )
    code, _, err = invoke("validate", str(flow))
    assert code == 2
    [line] = [e for e in err.splitlines() if e.startswith("error:")]
    assert "task 't-0'" in line and "(and 4 more task(s) with the same inputs)" in line


def test_export_and_graph_do_not_need_the_inputs(tmp_path: Path) -> None:
    flow = write(tmp_path / "flow.py", MISSING_INPUT)
    assert invoke("export", str(flow))[0] == 0
    assert invoke("graph", str(flow))[0] == 0


@pytest.mark.parametrize(
    ("command", "shown"),
    [
        ("echo $HOME > out.txt && cat out.txt", "$HOME, >, &&"),
        ("grep x *.csv | sort", "*, |"),
        ('echo "${NAME}"', "${NAME}"),  # double quotes still expand
        ("make; make install", ";"),
    ],
)
def test_shell_syntax_without_a_shell_is_a_warning_with_the_fix(command: str, shown: str) -> None:
    job = Job("j", pool="p", on_all_tasks_complete="terminatejob")
    job.task("t", command, wall_clock="1m")
    [warning] = [p for p in validate(job) if p.code == "shell-syntax"]
    assert f"({shown})" in warning.message
    assert f"/bin/bash -c '{command}'" in warning.message
    assert (warning.task_id, warning.field) == ("t", "commandLine")


@pytest.mark.parametrize(
    "command",
    [
        "/bin/bash -c 'echo $HOME > out.txt'",  # already in a shell
        "sh -c 'a | b'",
        "python3 -c 'import os; print(1 > 0)'",  # inside single quotes: the program's text
        'python3 -c "print(1); print(2)"',  # ; inside double quotes is not the shell's
        "curl -o a.zip https://x/y?sv=1",  # no shell syntax at all
    ],
)
def test_no_shell_warning_where_no_shell_would_act(command: str) -> None:
    job = Job("j", pool="p", on_all_tasks_complete="terminatejob")
    job.task("t", command, wall_clock="1m")
    assert [p for p in validate(job) if p.code == "shell-syntax"] == []


def test_the_shell_warning_quotes_single_quotes_in_its_fix() -> None:
    job = Job("j", pool="p", on_all_tasks_complete="terminatejob")
    job.task("t", "echo 'a b' > out.txt", wall_clock="1m")
    [warning] = [p for p in validate(job) if p.code == "shell-syntax"]
    assert "/bin/bash -c 'echo '\\''a b'\\'' > out.txt'" in warning.message


@pytest.mark.parametrize("value", ["1h", "24 hours", "90m", 3600])
def test_json_durations_must_be_iso_8601(tmp_path: Path, value: object) -> None:
    flow = write(
        tmp_path / "t.json",
        json.dumps([{"id": "a", "commandLine": "x", "constraints": {"maxWallClockTime": value}}]),
    )
    code, _, err = invoke("validate", str(flow))
    assert code == 2
    [line] = err.strip().splitlines()
    assert "task 'a' constraints.maxWallClockTime:" in line and "ISO 8601" in line


def test_friendly_durations_stay_a_python_convenience() -> None:
    job = Job("j", pool="p", on_all_tasks_complete="terminatejob", max_wall_clock_time="24 hours")
    job.task("a", "x", wall_clock="1h")
    assert job.to_wire()["tasks"][0]["constraints"]["maxWallClockTime"] == "PT1H"
    assert validate(job) == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("array.json", "[]"),  # an empty task array
        ("value.json", '{"value": []}'),  # an empty task collection
        ("job.json", '{"id": "j", "poolInfo": {"poolId": "p"}, "tasks": []}'),
        ("flow.py", "from batchflow import Job\njob = Job('j', pool='p')\n"),
    ],
)
def test_an_empty_task_list_is_an_error(tmp_path: Path, name: str, text: str) -> None:
    code, _, err = invoke("validate", str(write(tmp_path / name, text)))
    assert code == 2
    assert "the job has no tasks" in err
    assert "tasks:" in err  # the field


def test_a_job_document_without_tasks_is_a_job_add_body_and_valid(tmp_path: Path) -> None:
    flow = write(
        tmp_path / "job.json",
        '{"id": "j", "poolInfo": {"poolId": "p"}, "onAllTasksComplete": "noaction"}',
    )
    code, out, err = invoke("validate", str(flow))
    assert (code, err) == (0, "")
    assert "j  0 tasks" in out


def test_strict_makes_warnings_errors_in_validate_and_submit(tmp_path: Path) -> None:
    flow = write(
        tmp_path / "flow.py",
        "from batchflow import Job\njob = Job('j')\njob.task('a', '/bin/true')\n",
    )
    assert invoke("validate", str(flow))[0] == 0
    code, _, err = invoke("validate", str(flow), "--strict")
    assert code == 2
    assert f"error: {flow}:3: job 'j' task 'a' constraints.maxWallClockTime:" in err
    code, out, _ = invoke("validate", str(flow), "--strict", "--output", "json")
    assert code == 2 and json.loads(out)["valid"] is False
    state = tmp_path / "state"
    code, _, err = invoke("submit", str(flow), "--strict", "--state-dir", str(state))
    assert code == 2
    assert "maxWallClockTime" in err
    # Nothing was submitted.
    assert invoke("status", "j", "--state-dir", str(state))[0] == 2


def test_submit_shows_the_warnings_before_it_runs(tmp_path: Path) -> None:
    flow = write(
        tmp_path / "flow.py",
        "from batchflow import Job\njob = Job('j', pool='p')\njob.task('a', '/bin/true')\n",
    )
    code, _, err = invoke("submit", str(flow), "--state-dir", str(tmp_path / "state"))
    assert code == 0
    assert f"warning: {flow}:3: job 'j' task 'a' constraints.maxWallClockTime:" in err
    assert "onAllTasksComplete" in err


def test_json_advice_names_json_fields_not_python_keywords(tmp_path: Path) -> None:
    tasks = [
        {"id": "get", "commandLine": "wget https://x/data.zip"},
        {
            "id": "use",
            "commandLine": "python3 use.py",
            "dependsOn": {"taskIds": ["get"]},
            "constraints": {"maxTaskRetryCount": 2},
        },
    ]
    code, out, _ = invoke("validate", str(write(tmp_path / "t.json", json.dumps(tasks))))
    assert code == 0
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    assert len(warnings) >= 5
    text = "\n".join(warnings)
    for python_only in ("wall_clock=", "on_all_tasks_complete=", "inputs=", "pool=", "in Python"):
        assert python_only not in text
    assert "AZ_BATCH_NODE_SHARED_DIR" not in text
    assert '"onAllTasksComplete": "terminatejob"' in text


def test_python_advice_names_python_keywords() -> None:
    job = Job("j")
    job.task("a", "python3 a.py", retries=2)
    text = "\n".join(p.message for p in validate(job))
    assert "wall_clock=" in text and "on_all_tasks_complete=" in text and "pool=" in text


def test_retries_without_wall_clock_says_a_wall_clock_kill_is_not_retried() -> None:
    job = Job("j", pool="p", on_all_tasks_complete="terminatejob")
    job.task("a", "/bin/true", retries=3)
    [warning] = [p for p in validate(job) if p.code == "retries-without-wall-clock"]
    assert "never retried" in warning.message
    assert "killed at its wall clock is not retried either" in warning.message


def test_validate_warns_when_the_job_names_no_pool(tmp_path: Path) -> None:
    code, out, _ = invoke(
        "validate", str(write(tmp_path / "t.json", '[{"id": "a", "commandLine": "x"}]'))
    )
    assert code == 0
    assert "poolInfo: the job names no pool" in out
    code, out, _ = invoke("validate", str(tmp_path / "t.json"), "--pool-id", "p")
    assert "names no pool" not in out


def test_validate_json_is_camel_case(tmp_path: Path) -> None:
    flow = write(tmp_path / "t.json", '[{"id": "a", "commandLine": "x"}]')
    code, out, _ = invoke("validate", str(flow), "--output", "json")
    assert code == 0
    warning = json.loads(out)["warnings"][0]
    assert "jobId" in warning and "job_id" not in warning
    assert warning["taskId"] == "a"


def test_a_secret_in_a_shell_warning_is_hidden(tmp_path: Path) -> None:
    flow = write(
        tmp_path / "t.json",
        json.dumps([{"id": "a", "commandLine": "curl https://x/y?sv=1&sig=s3cr3tSIG > out.txt"}]),
    )
    code, out, err = invoke("validate", str(flow), "--pool-id", "p")
    assert code == 0
    assert "shell syntax" in out
    assert "s3cr3tSIG" not in out + err and "sig=***" in out
    code, out, _ = invoke("validate", str(flow), "--output", "json")
    assert "s3cr3tSIG" not in out
