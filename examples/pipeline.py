"""Tutorial step 6: a pipeline with dependencies, and a merge that waits for a range.

download-data -> process-data -> generate-report, as the tutorial draws it; then 100
numbered tasks ("1" .. "100") and a merge that waits for all of them, which exports as
Batch's compact `taskIdRanges: [{"start": 1, "end": 100}]`.

Each task runs in its own working directory, possibly on another node, so each stage
hands its files to the next: `outputs=` on the parent, the parent in the child's
`inputs=`. The child waits for the parent and finds its files at
`$AZ_BATCH_JOB_ID/<parent id>/` in its working directory, on one node or many.
"""

from batchflow import Job

job = Job(
    "pipeline-job",
    pool="my-compute-pool",
    on_all_tasks_complete="terminatejob",
)
download = job.task(
    "download-data",
    "/bin/bash -c 'seq 1 1000 > dataset.txt'",
    outputs=["dataset.txt"],
    wall_clock="10m",
)
process = job.task(
    "process-data",
    # No shell runs a command line (as on Batch), so $VARS need one: bash -c '...'.
    "/bin/bash -c 'python3 process.py --input $AZ_BATCH_JOB_ID/download-data/dataset.txt"
    " --output processed.csv'",
    inputs=["files/process.py", download],
    outputs=["processed.csv"],
    wall_clock="10m",
)
report = job.task(
    "generate-report",
    "/bin/bash -c 'python3 report.py $AZ_BATCH_JOB_ID/process-data/processed.csv'",
    inputs=["files/report.py", process],
    outputs=["report.txt"],
    wall_clock="10m",
)
parts = job.map(
    "{i}",
    "/bin/bash -c 'echo part {i} > part.txt'",
    i=range(1, 101),
    outputs=["part.txt"],
    wall_clock="1m",
)
job.task(
    "merge-results",
    "/bin/bash -c 'cat $AZ_BATCH_JOB_ID/*/part.txt | wc -l'",
    inputs=[parts],
    wall_clock="5m",
)
