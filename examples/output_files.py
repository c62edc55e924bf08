"""Tutorial step 5: keep a task's results and, when it fails, its error log.

The tutorial uploads `results.json` on success and `stderr.txt` on failure to blob
containers with SAS URLs. `outputs=` collects result files (locally into the results
folder, on Azure into the stack's outputs container); stdout.txt and stderr.txt are
always kept next to the task (`batchflow logs JOB TASK --stderr`).
"""

from batchflow import Job

job = Job("analysis-job", pool="my-compute-pool", on_all_tasks_complete="terminatejob")
job.task(
    "analysis-task",
    "/bin/bash -c 'python3 analyze.py > results.json'",
    inputs=["files/analyze.py"],
    outputs=["results.json"],
    wall_clock="10m",
)
