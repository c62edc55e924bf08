"""Secrets at rest: SAS signatures and keys are sealed before they reach the state file.

A task's definition must survive a crash (the engine reads it back to run the task), and
it may carry secrets: a SAS signature in a resource or output file URL, an account key in
an environment setting or a command line. The state file never holds them in clear: each
secret value is replaced by `sealed:<base64>`, encrypted with a key kept in its own file
next to the state (`secret.key`, mode 0600). A copy of `state.db` alone (attached to a bug
report, backed up, read with `sqlite3`) reveals nothing; the engine unseals the values
when it starts the task.

The cipher is a keystream of HMAC-SHA256(key, nonce || counter) blocks XORed with the
value (a fresh 16-byte nonce per value): standard-library only, and confidential as long as
the key file stays private.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path

__all__ = ["Sealer"]

_MARK = "sealed:"
# Where a secret value starts: the same places `redact` hides.
_PREFIX = (
    r"(?i)((?:[?&](?:sig|token)=)|(?:(?:AccountKey|SharedAccessKey|SharedAccessSignature|"
    r"Password|ClientSecret)=))"
)
_SECRETS = re.compile(_PREFIX + r"((?!sealed:)[^&#\s'\";\\]+)")
_SEALED = re.compile(_PREFIX + r"sealed:([A-Za-z0-9_-]+)")


class Sealer:
    """Seals and unseals the secrets in text with the key of one state directory."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._key: bytes | None = None

    def _load(self) -> bytes:
        if self._key is None:
            try:
                self._key = self.key_file.read_bytes()
            except FileNotFoundError:
                key = os.urandom(32)
                self.key_file.parent.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                try:
                    os.write(fd, key)
                finally:
                    os.close(fd)
                self._key = key
        return self._key

    def _stream(self, nonce: bytes, size: int) -> bytes:
        import hashlib  # here: the engine's start-up skips OpenSSL until a secret shows up
        import hmac

        key = self._load()
        blocks = []
        for counter in range((size + 31) // 32):
            block = nonce + counter.to_bytes(4, "big")
            blocks.append(hmac.new(key, block, hashlib.sha256).digest())
        return b"".join(blocks)[:size]

    def seal(self, text: str) -> str:
        """`text` with every secret value replaced by its sealed form."""
        if not _SECRETS.search(text):
            return text

        def one(match: re.Match[str]) -> str:
            value = match.group(2).encode()
            nonce = os.urandom(16)
            stream = self._stream(nonce, len(value))
            cipher = bytes(a ^ b for a, b in zip(value, stream, strict=True))
            token = base64.urlsafe_b64encode(nonce + cipher).decode().rstrip("=")
            return match.group(1) + _MARK + token

        return _SECRETS.sub(one, text)

    def unseal(self, text: str) -> str:
        """`text` with every sealed value back in clear."""
        if _MARK not in text:
            return text

        def one(match: re.Match[str]) -> str:
            token = match.group(2)
            try:
                raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
                nonce, cipher = raw[:16], raw[16:]
                stream = self._stream(nonce, len(cipher))
                plain = bytes(a ^ b for a, b in zip(cipher, stream, strict=True)).decode()
            except (ValueError, UnicodeDecodeError):
                return match.group(0)  # not one of ours: leave it as written
            return match.group(1) + plain

        return _SEALED.sub(one, text)
