"""Moving a task's files, with Azure Batch's semantics.

- `fetch_resource_files`: Batch `resourceFiles` (http(s) URLs, blob containers, the
  auto-storage account) into a working directory, before the command runs.
- `upload_output_files`: Batch `outputFiles` (glob patterns) to blob containers after it
  ran, with `uploadCondition`, `fileuploadout.txt` / `fileuploaderr.txt`.
- `match_files`: Batch's `filePattern` matcher.
- `stage_inputs` / `collect_outputs`: the DSL's local `inputs=` and `outputs=`;
  `stage_handoffs`: the collected outputs of the parents a task is handed.

Failures raise `PreprocessingError` / `FileUploadError` carrying Batch's `failureInfo`
(`category`, `code`, `message`). Importing this package is cheap: `azure.storage.blob` and
`urllib.request` are imported only when a transfer needs them.

```python
fetch_resource_files([{"httpUrl": url, "filePath": "data/in.csv"}], task_dir / "wd")
upload_output_files(
    [{"filePattern": "../std*.txt",
      "destination": {"container": {"containerUrl": sas_url, "path": "logs/t1"}},
      "uploadOptions": {"uploadCondition": "taskCompletion"}}],
    task_dir, exit_code=0,
)
```
"""

from __future__ import annotations

from batchflow.exceptions import FileUploadError, PreprocessingError, StagingError
from batchflow.storage.blobs import AutoStorage, TransferPolicy
from batchflow.storage.local import check_inputs, collect_outputs, stage_handoffs, stage_inputs
from batchflow.storage.outputs import upload_output_files
from batchflow.storage.patterns import match_files
from batchflow.storage.resources import DEFAULT_FILE_MODE, fetch_resource_files

__all__ = [
    "DEFAULT_FILE_MODE",
    "AutoStorage",
    "FileUploadError",
    "PreprocessingError",
    "StagingError",
    "TransferPolicy",
    "check_inputs",
    "collect_outputs",
    "fetch_resource_files",
    "match_files",
    "stage_handoffs",
    "stage_inputs",
    "upload_output_files",
]
