"""The CLI's rough edges a new user tripped over, each through the real command."""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from batchflow.cli import main as app_module
from batchflow.cli.main import app

runner = CliRunner()
WAIT = 60.0
PACKAGE = Path(app_module.__file__).resolve().parent.parent  # batchflow/


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def batchflow(*args: str, timeout: float = WAIT) -> subprocess.CompletedProcess[str]:
    """The real command in its own process (the worktree's code, as the tests import it)."""
    return subprocess.run(
        [sys.executable, "-m", "batchflow", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


QUICK = """\
from batchflow import Job
job = Job("quick", pool="p", on_all_tasks_complete="terminatejob")
job.task("a", "/bin/sh -c 'echo hi > summary.csv'", wall_clock="1m")
"""


def answer_prompt(args: list[str], keys: bytes) -> tuple[int, str]:
    """Run the command on a pseudo-terminal (so it asks), type `keys`, return (code, text)."""
    pid, fd = pty.fork()
    if pid == 0:  # the child: the command, with the terminal as its stdin/stdout/stderr
        os.execv(sys.executable, [sys.executable, "-m", "batchflow", *args])
    output = b""
    deadline = time.monotonic() + WAIT
    while b"?" not in output and time.monotonic() < deadline:
        output += os.read(fd, 1024)
    os.write(fd, keys)
    while True:
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return os.waitstatus_to_exitcode(status), output.decode(errors="replace")


@pytest.mark.parametrize(
    "keys",
    [b"n\n", b"\n", b"\x04"],  # no; Enter (the default is no); Ctrl-D (end of input)
    ids=["n", "enter", "ctrl-d"],
)
def test_declining_delete_keeps_the_job_and_exits_cleanly(
    tmp_path: Path, state_dir: Path, keys: bytes
) -> None:
    flow = write(tmp_path / "flow.py", QUICK)
    s = ["--state-dir", str(state_dir)]
    assert invoke("submit", str(flow), *s)[0] == 0
    code, text = answer_prompt(["delete", "quick", *s], keys)
    assert code == 0, text
    assert "kept (nothing deleted)" in text
    assert "internal error" not in text and "Traceback" not in text
    assert invoke("status", "quick", *s)[0] == 0  # still there


def test_confirming_delete_deletes(tmp_path: Path, state_dir: Path) -> None:
    flow = write(tmp_path / "flow.py", QUICK)
    s = ["--state-dir", str(state_dir)]
    assert invoke("submit", str(flow), *s)[0] == 0
    code, text = answer_prompt(["delete", "quick", *s], b"y\n")
    assert code == 0, text
    assert "quick  deleted" in text


@pytest.mark.parametrize("args", [[], ["infra"]], ids=["batchflow", "batchflow-infra"])
def test_a_command_group_alone_prints_its_usage(args: list[str]) -> None:
    code, _, err = invoke(*args)
    assert code == 2
    assert "Usage:" in err and "Commands:" in err


@pytest.mark.parametrize("delay", [0.05, 0.1, 0.15, 0.25, 0.4])
def test_ctrl_c_early_in_submit_is_one_line_and_130(tmp_path: Path, delay: float) -> None:
    flow = write(tmp_path / "flow.py", QUICK.replace("echo hi", "sleep 5; echo hi"))
    state = tmp_path / "state"
    child = subprocess.Popen(
        [sys.executable, "-m", "batchflow", "submit", str(flow), "--state-dir", str(state)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(delay)
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=WAIT)
    finally:
        if child.poll() is None:
            child.kill()
        from tests.local.conftest import stop_engine

        stop_engine(state)
    # Before Python installs its handler, SIGINT kills at once (no output at all); while
    # the interpreter itself starts (runpy, before any of batchflow's code), Python prints
    # its own traceback, which no program can prevent. From batchflow's first line on:
    # one line and 130.
    frames = [line for line in err.splitlines() if line.lstrip().startswith('File "')]
    package = str(PACKAGE)
    if frames and not any(package in line for line in frames):
        return  # the interpreter's start-up (site, runpy, the stdlib), not batchflow
    assert child.returncode in (130, -signal.SIGINT), (child.returncode, err)
    assert "Traceback" not in out + err and "KeyboardInterrupt" not in err
    if child.returncode == 130:
        assert len(err.strip().splitlines()) <= 2, err  # the interruption, at most a note


def test_debug_works_after_the_subcommand(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHFLOW_DEBUG", "")  # restored after the test
    flow = write(tmp_path / "flow.py", QUICK)
    code, _, err = invoke("validate", str(flow), "--debug")
    assert (code, err) == (0, "")
    assert os.environ["BATCHFLOW_DEBUG"] == "1"


def test_an_error_in_an_imported_module_shows_the_users_innermost_line(tmp_path: Path) -> None:
    write(tmp_path / "rough_helpers.py", "def make(n):\n    return 1 / n\n")
    flow = write(
        tmp_path / "flow.py",
        "from batchflow import Job\nfrom rough_helpers import make\njob = Job('j')\nmake(0)\n",
    )
    code, _, err = invoke("validate", str(flow))
    assert code == 2
    [line] = err.strip().splitlines()
    assert line.startswith(f"error: {flow}:4: error in the flow: ZeroDivisionError")
    assert "rough_helpers.py:2)" in line


BLOCKED = """\
from batchflow import Job
job = Job("blocked", pool="p")
a = job.task("a", "/bin/false", wall_clock="1m")
job.task("b", "/bin/echo never", after=a, wall_clock="1m")
"""


def test_logs_follow_of_a_task_that_can_never_start_says_so(
    tmp_path: Path, state_dir: Path
) -> None:
    flow = write(tmp_path / "flow.py", BLOCKED)
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(flow), *s)[0] == 1  # 'a' failed, 'b' blocked
    result = batchflow("logs", "blocked", "b", "--follow", *s)
    assert result.returncode == 1
    assert "task 'b' will never start" in result.stderr
    assert "dependency that failed" in result.stderr


def open_when_running(state_dir: Path, job_id: str, gate: Path) -> None:
    """Touch `gate` once a task of `job_id` runs (or after 60 s, so nothing hangs)."""
    from batchflow.backends.local import LocalBackend

    backend = LocalBackend(state_dir)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if backend.job_status(job_id).counts.running:
                break
            time.sleep(0.01)
    finally:
        backend.close()
        gate.touch()


def test_status_watch_follows_the_job_to_its_end(tmp_path: Path, state_dir: Path) -> None:
    gate = tmp_path / "gate"
    held = f"until test -e {gate}; do sleep 0.01; done; echo hi"
    flow = write(tmp_path / "flow.py", QUICK.replace("echo hi", held))
    s = ("--state-dir", str(state_dir))
    code, out, _ = invoke("submit", str(flow), "--detach", *s)
    assert code == 0 and "batchflow status quick --watch" in out
    # The task ends while --watch follows it: the gate opens once the task runs.
    opener = threading.Thread(target=open_when_running, args=(state_dir, "quick", gate))
    opener.start()
    code, out, _ = invoke("status", "quick", "--watch", *s)
    opener.join()
    assert code == 0
    assert "quick  completed (AllTasksComplete)" in out
    assert "completed 1 " in out
    code, out, _ = invoke("status", "quick", "--watch", *s, "--output", "json")
    assert json.loads(out)["state"] == "completed"


def test_terminate_says_what_status_says(tmp_path: Path, state_dir: Path) -> None:
    flow = write(tmp_path / "flow.py", QUICK.replace("echo hi", "sleep 30"))
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(flow), "--detach", *s)[0] == 0
    code, out, _ = invoke("terminate", "quick", *s)
    assert code == 0
    assert out.strip() == "quick  completed (UserTerminate)"
    assert "quick  completed (UserTerminate)" in invoke("status", "quick", *s)[1]


def test_download_hints_wd_and_creates_folders(tmp_path: Path, state_dir: Path) -> None:
    flow = write(tmp_path / "flow.py", QUICK)
    s = ("--state-dir", str(state_dir))
    assert invoke("submit", str(flow), *s)[0] == 0
    code, _, err = invoke("download", "quick", "a", "summary.csv", *s)
    assert code == 2
    assert "(did you mean 'wd/summary.csv'?)" in err
    target = tmp_path / "out" / "sub" / "s.csv"
    code, _, err = invoke("download", "quick", "a", "wd/summary.csv", "-o", str(target), *s)
    assert code == 0, err
    assert target.read_text() == "hi\n"
    # no hint where there is nothing to hint at
    code, _, err = invoke("download", "quick", "a", "nothing.csv", *s)
    assert code == 2 and "did you mean" not in err


def test_monitoring_commands_do_not_load_pydantic_or_rich(tmp_path: Path, state_dir: Path) -> None:
    """typer would build a pydantic TypeAdapter per parameter; plain ones are coerced
    directly, so a status/tasks/logs never pays for pydantic (a start-up cost), nor for
    rich: their text is plain lines."""
    flow = write(tmp_path / "flow.py", QUICK)
    assert invoke("submit", str(flow), "--state-dir", str(state_dir))[0] == 0
    probe = (
        "import sys\n"
        "from batchflow.cli.main import app\n"
        "code = app(sys.argv[1:], standalone_mode=False)\n"
        "print(any(m in sys.modules for m in ('pydantic', 'rich')), file=sys.stderr)\n"
    )
    for args in (["status", "quick"], ["tasks", "quick"], ["logs", "quick", "a"]):
        result = subprocess.run(
            [sys.executable, "-c", probe, *args, "--state-dir", str(state_dir)],
            capture_output=True,
            text=True,
            check=False,
            timeout=WAIT,
        )
        assert result.stderr.strip().splitlines()[-1] == "False", (args, result.stderr)


def test_a_standard_module_name_next_to_the_flow_does_not_stop_the_engine(
    tmp_path: Path, state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A project with its own `re.py` or `json.py`: the engine, started from that folder,
    still imports the standard library's."""
    for name in ("re", "json", "selectors"):
        write(tmp_path / f"{name}.py", f"raise SystemExit('the folder of the flow: {name}.py')\n")
    write(tmp_path / "flow.py", QUICK)
    monkeypatch.chdir(tmp_path)
    code, out, err = invoke("submit", "flow.py", "--state-dir", str(state_dir))
    assert code == 0, err
    assert "quick  completed (AllTasksComplete)" in out
