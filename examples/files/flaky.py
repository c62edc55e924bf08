"""Fail on the first attempt of a task, succeed on a later one (a transient fault).

The marker lives in the task directory, which a retry keeps.
"""

import os
import sys

marker = os.path.join(os.environ.get("AZ_BATCH_TASK_DIR", "."), "attempted")
if not os.path.exists(marker):
    open(marker, "w").close()
    print("transient failure, Batch will retry", file=sys.stderr)
    sys.exit(1)
print("succeeded on retry")
