"""Secrets at rest: SAS signatures and keys are sealed before they reach the state file.

A task's definition must survive a crash (the engine reads it back to run the task), and
it may carry secrets: a SAS signature in a resource or output file URL, an account key in
an environment setting or a command line. The state file never holds them in clear: each
secret value (as `batchflow.redact.SECRET` defines one) is replaced by
`sealed:v2.<base64url>`, encrypted with a key kept in its own file next to the state
(`secret.key`, 32 random bytes, mode 0600). A copy of `state.db` alone (attached to a bug
report, backed up, read with `sqlite3`) reveals nothing; the engine unseals the values
when it starts the task.

The cipher is AES-256-GCM from `cryptography` (an authenticated cipher: a value that was
altered, or sealed with another key, is refused rather than decrypted to garbage), with a
fresh 96-bit nonce per value and a key derived from the key file with HKDF-SHA256.

Earlier versions sealed values as `sealed:<base64url>` with a keystream of
HMAC-SHA256(key, nonce || counter) blocks and no integrity check. `unseal` still reads
that form with the same key file, so `sealer.seal(sealer.unseal(text))` rewrites a value
of an old state directory in the current form (what a schema migration does).
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from batchflow.exceptions import StateError
from batchflow.redact import SECRET_PREFIX, SECRET_VALUE

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["Sealer"]

_MARK = "sealed:"
_V2 = "v2."
_AAD = b"batchflow sealed v2"
_SECRETS = re.compile(SECRET_PREFIX + r"((?!sealed:)" + SECRET_VALUE + ")")
_SEALED = re.compile(SECRET_PREFIX + r"sealed:((?:v2\.)?[A-Za-z0-9_-]+)")


def _b64decode(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


class Sealer:
    """Seals and unseals the secrets in text with the key of one state directory."""

    def __init__(self, key_file: Path) -> None:
        self.key_file = key_file
        self._key: bytes | None = None
        self._aead: AESGCM | None = None

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

    def _cipher(self) -> AESGCM:
        if self._aead is None:
            # Imported here: the engine's start-up skips OpenSSL until a secret shows up.
            from cryptography.hazmat.primitives import hashes
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM
            from cryptography.hazmat.primitives.kdf.hkdf import HKDF

            hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_AAD)
            self._aead = AESGCM(hkdf.derive(self._load()))
        return self._aead

    def seal(self, text: str) -> str:
        """`text` with every secret value replaced by its sealed form."""
        if not _SECRETS.search(text):
            return text
        aead = self._cipher()

        def one(match: re.Match[str]) -> str:
            nonce = os.urandom(12)
            sealed = aead.encrypt(nonce, match.group(2).encode(), _AAD)
            token = base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")
            return match.group(1) + _MARK + _V2 + token

        return _SECRETS.sub(one, text)

    def unseal(self, text: str) -> str:
        """`text` with every sealed value back in clear (current and earlier forms).

        Raises `StateError` when a value in the current form fails authentication: it was
        altered, or the key file is not the one it was sealed with.
        """
        if _MARK not in text:
            return text

        def one(match: re.Match[str]) -> str:
            token = match.group(2)
            if token.startswith(_V2):
                return match.group(1) + self._open(token[len(_V2) :])
            try:
                plain = self._open_hmac_keystream(_b64decode(token))
            except (ValueError, UnicodeDecodeError):
                return match.group(0)  # not one of ours: leave it as written
            return match.group(1) + plain

        return _SEALED.sub(one, text)

    def _open(self, token: str) -> str:
        from cryptography.exceptions import InvalidTag

        try:
            raw = _b64decode(token)
            return self._cipher().decrypt(raw[:12], raw[12:], _AAD).decode()
        except (InvalidTag, ValueError, UnicodeDecodeError):
            raise StateError(
                f"a secret sealed in the state directory '{self.key_file.parent}' cannot be "
                f"opened with its key file '{self.key_file.name}' (the key was replaced or "
                "the state file altered): the task must be added again (replaced, or its job "
                "deleted)",
                elsewhere=False,
            ) from None

    def _open_hmac_keystream(self, raw: bytes) -> str:
        """A value sealed by batchflow before AES-GCM: XOR with HMAC-SHA256 blocks."""
        import hashlib
        import hmac

        key = self._load()
        nonce, cipher = raw[:16], raw[16:]
        blocks = [
            hmac.new(key, nonce + counter.to_bytes(4, "big"), hashlib.sha256).digest()
            for counter in range((len(cipher) + 31) // 32)
        ]
        stream = b"".join(blocks)[: len(cipher)]
        return bytes(a ^ b for a, b in zip(cipher, stream, strict=True)).decode()
