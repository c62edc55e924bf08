"""Keep secrets out of everything batchflow prints or stores.

SAS signatures, account keys and connection-string keys are replaced by `***` wherever
text leaves the program: error messages, tables, logs and the state file's readable columns.

>>> redact("https://a.blob.core.windows.net/c?sv=2024&sig=abc%2Bdef&sp=w")
'https://a.blob.core.windows.net/c?sv=2024&sig=***&sp=w'
"""

from __future__ import annotations

import re

__all__ = ["redact"]

_PATTERNS = (
    # SAS query parameters that are signatures or keys.
    re.compile(r"(?i)([?&](?:sig|se?k|skoid|sktid|token)=)[^&#\s'\"]+"),
    # Connection strings and key=value settings.
    re.compile(
        r"(?i)((?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|ClientSecret)=)[^;\s'\"]+"
    ),
    # Authorization headers.
    re.compile(r"(?i)((?:SharedKey\s+[^:\s]+:|Bearer\s+))[A-Za-z0-9+/=._-]+"),
)


def redact(text: str) -> str:
    """`text` with every secret it contains replaced by `***`."""
    if not text:
        return text
    for pattern in _PATTERNS:
        text = pattern.sub(r"\1***", text)
    return text
