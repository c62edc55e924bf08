"""Tutorial step 6: a pipeline with dependencies, and a merge that waits for a range.

download-data -> process-data -> generate-report, as the tutorial draws it; then 100
numbered tasks ("1" .. "100") and a merge that waits for all of them, which exports as
Batch's compact `taskIdRanges: [{"start": 1, "end": 100}]`.

Each task runs in its own working directory, so the stages hand their files over
through the node's shared directory ($AZ_BATCH_NODE_SHARED_DIR), as they would on a pool
node.
"""

from batchflow import Job

job = Job(
    "pipeline-job",
    pool="my-compute-pool",
    on_all_tasks_complete="terminatejob",
)
download = job.task(
    "download-data",
    "/bin/bash -c 'seq 1 1000 > $AZ_BATCH_NODE_SHARED_DIR/dataset.txt'",
    wall_clock="10m",
)
process = job.task(
    "process-data",
    # No shell runs a command line (as on Batch), so $VARS need one: bash -c '...'.
    "/bin/bash -c 'python3 process.py --input $AZ_BATCH_NODE_SHARED_DIR/dataset.txt"
    " --output $AZ_BATCH_NODE_SHARED_DIR/processed.csv'",
    after=download,
    inputs=["files/process.py"],
    wall_clock="10m",
)
report = job.task(
    "generate-report",
    "/bin/bash -c 'python3 report.py $AZ_BATCH_NODE_SHARED_DIR/processed.csv'",
    after=process,
    inputs=["files/report.py"],
    outputs=["report.txt"],
    wall_clock="10m",
)
parts = job.map(
    "{i}",
    "/bin/bash -c 'echo part {i} >> $AZ_BATCH_NODE_SHARED_DIR/parts.txt'",
    i=range(1, 101),
    wall_clock="1m",
)
job.task(
    "merge-results",
    "/bin/bash -c 'sort -n $AZ_BATCH_NODE_SHARED_DIR/parts.txt | wc -l'",
    after=parts,
    wall_clock="5m",
)
