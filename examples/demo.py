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
        results = Path(state) / "results"
        print("results collected from outputs=:")
        for path in sorted(results.rglob("*")):
            if path.is_file():
                print(f"  {path.relative_to(state)}")
                print("    " + path.read_text().strip().replace("\n", "\n    "))


if __name__ == "__main__":
    main()
