"""`make demo`: run real flows end to end on this machine with the local engine.

Validates the example flows, then runs two of them with `batchflow submit` (Azure Batch
semantics: no shell, AZ_BATCH_* variables, node directories, dependencies, retries) and
shows what a user would look at next: status, tasks, logs and the collected results.
State goes to a temporary folder, so the demo leaves nothing behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent
VALIDATE = ["hello.py", "input_files.py", "bulk_frames.py", "output_files.py", "pipeline.py"]


def batchflow(*args: str, ok: tuple[int, ...] = (0,)) -> None:
    print(f"$ batchflow {' '.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "batchflow", *args], check=False)
    if result.returncode not in ok:
        sys.exit(result.returncode)
    print(flush=True)


def main() -> None:
    for name in VALIDATE:
        batchflow("validate", str(HERE / name))
    with tempfile.TemporaryDirectory(prefix="batchflow-demo-") as state:
        os.environ["BATCHFLOW_STATE_DIR"] = state
        # the tutorial's step 3: inputs staged into the working dir, output collected
        batchflow("submit", str(HERE / "input_files.py"))
        # step 6: a dependency chain, 100 numbered tasks and a merge over their range
        batchflow("submit", str(HERE / "pipeline.py"))
        batchflow("jobs")
        batchflow("status", "pipeline-job")
        batchflow("tasks", "pipeline-job", "--state", "failed")
        batchflow("logs", "pipeline-job", "merge-results")
        batchflow("logs", "data-processing-job", "process-001")
        show_results(Path(state))


def show_results(state: Path, *, files: int = 3, lines: int = 3) -> None:
    """Each job's newest collected files (the end of its pipeline) with their first lines:
    enough to see what `outputs=` gathered without printing a hundred files."""
    print("results collected from outputs=:")
    for job in sorted((state / "results").iterdir()):
        found = [path for path in job.rglob("*") if path.is_file()]
        found.sort(key=lambda path: path.stat().st_mtime_ns, reverse=True)
        for path in sorted(found[:files]):
            print(f"  {path.relative_to(state)}")
            text = path.read_text().splitlines()
            for line in text[:lines]:
                print(f"    {line}")
            if len(text) > lines:
                print(f"    ... ({len(text) - lines:,} more lines)")
        if len(found) > files:
            print(f"  ... and {len(found) - files:,} more files under {job.relative_to(state)}/")


if __name__ == "__main__":
    main()
