"""Tutorial step 3: a task with input files.

The tutorial uploads `input.csv` and `process.py` to a blob container and lists their
SAS URLs as resource files. Here `inputs=` names the local files; batchflow stages them
into the task's working directory (locally: copies; on Azure: uploads to the stack's
inputs container and adds the resource files for you).
"""

from batchflow import Job

job = Job(
    "data-processing-job",
    pool="my-compute-pool",
    priority=100,
    max_task_retry_count=3,
    max_wall_clock_time="24h",
    on_all_tasks_complete="terminatejob",
)
job.task(
    "process-001",
    "python3 process.py --input input.csv --output output.csv",
    inputs=["files/process.py", "files/input.csv"],
    outputs=["output.csv"],
    wall_clock="10m",
)
