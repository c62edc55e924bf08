"""Tutorial step 2: one task that says hello (`az batch task create --command-line ...`)."""

from batchflow import Job

job = Job("hello-job", pool="my-compute-pool", on_all_tasks_complete="terminatejob")
job.task(
    "task-001",
    "/bin/bash -c 'echo Hello from Azure Batch && hostname && date'",
    wall_clock="5m",
)
