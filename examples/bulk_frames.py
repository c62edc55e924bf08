"""Tutorial step 4: many similar tasks at once (the tutorial's hand-written tasks.json).

`map` makes one task per frame; the JSON the tutorial writes by hand comes out of
`batchflow export examples/bulk_frames.py --tasks-only`.
"""

from batchflow import Job

job = Job("render-job-001", pool="my-compute-pool", on_all_tasks_complete="terminatejob")
frames = job.map(
    "frame-{i:03d}",
    "python3 render.py --frame {i} --out frame-{i:03d}.txt",
    i=range(1, 21),
    inputs=["files/render.py"],
    outputs=["frame-{i:03d}.txt"],
    wall_clock="5m",
)
