"""Tutorial step 9: a task that fails now and then, retried by Batch.

`retries=3` is constraints.maxTaskRetryCount, `wall_clock="1h"` maxWallClockTime and
`retention="7d"` retentionTime, which the tutorial writes as "PT7D" (not ISO 8601;
Batch rejects it: days come before the T, so "P7D").
"""

from batchflow import Job

job = Job("flaky-job", pool="my-compute-pool", on_all_tasks_complete="terminatejob")
job.task(
    "flaky-task",
    "python3 flaky.py",
    inputs=["files/flaky.py"],
    retries=3,
    wall_clock="1h",
    retention="7d",
)
