"""What a secret looks like, and keeping secrets out of everything batchflow prints.

This module is the one definition of a secret value: `SECRET_PREFIX` matches where one
starts (a SAS signature or key parameter, a connection-string key or password, the
credential of an `Authorization` header) and `SECRET_VALUE` the value itself. `redact`
replaces each value by `***` wherever text leaves the program (error messages, tables,
logs, the state file's readable columns); the local engine's `sealing` encrypts the same
values before a task definition reaches the state file.

>>> redact("https://a.blob.core.windows.net/c?sv=2024&sig=abc%2Bdef&sp=w")
'https://a.blob.core.windows.net/c?sv=2024&sig=***&sp=w'
>>> redact("Authorization: Bearer eyJ0eXAi.x-y")
'Authorization: Bearer ***'
"""

from __future__ import annotations

import re

__all__ = ["SECRET", "SECRET_PREFIX", "SECRET_VALUE", "redact"]

#: Where a secret value starts (one capturing group), case-insensitively:
#: - SAS query parameters that are signatures or name a signing key (`sig`, `sk`, `sek`,
#:   `skoid`, `sktid`) and OAuth-style `token=`;
#: - connection-string and settings keys (`AccountKey=`, `SharedAccessKey=`,
#:   `SharedAccessSignature=`, `Password=`, `ClientSecret=`);
#: - `Authorization` header credentials (`SharedKey account:`, `Bearer `).
SECRET_PREFIX = (
    r"(?i)("
    r"[?&](?:sig|sk|sek|skoid|sktid|token)="
    r"|(?:AccountKey|SharedAccessKey|SharedAccessSignature|Password|ClientSecret)="
    r"|SharedKey\s+[^:\s]+:"
    r"|Bearer\s+"
    r")"
)
#: The secret value: up to the next URL, connection-string, shell or JSON delimiter.
SECRET_VALUE = r"[^&#\s'\";\\]+"
#: A whole secret: group 1 is the prefix (kept), group 2 the value (hidden or sealed).
SECRET = re.compile(SECRET_PREFIX + "(" + SECRET_VALUE + ")")


def redact(text: str) -> str:
    """`text` with every secret it contains replaced by `***`."""
    if not text:
        return text
    return SECRET.sub(r"\1***", text)
