"""`make demo`: validate every example flow and draw its graph, with the real CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
FLOWS = [
    "hello.py",
    "input_files.py",
    "bulk_frames.py",
    "output_files.py",
    "pipeline.py",
    "flaky.py",
]


def batchflow(*args: str) -> None:
    print(f"$ batchflow {' '.join(args)}", flush=True)
    result = subprocess.run([sys.executable, "-m", "batchflow", *args], check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)
    print(flush=True)


def main() -> None:
    for name in FLOWS:
        flow = str(HERE / name)
        batchflow("validate", flow)
        batchflow("graph", flow)
    batchflow("export", str(HERE / "pipeline.py"), "--job-only")


if __name__ == "__main__":
    main()
