"""Print a small JSON analysis of this task's environment."""

import json
import os

print(json.dumps({"task": os.environ.get("AZ_BATCH_TASK_ID"), "ok": True}))
