"""Authentication of requests: Batch's Shared Key, and bearer tokens under TLS.

The string to sign (batch-semantics.md 5.11): the verb, the standard headers in Batch's
order (empty where absent), the `ocp-*` headers sorted by lower-cased name, then
`/account` + the path + the query parameters sorted by name. Clients differ in two
places, and each variant they really send is accepted:

- the path: azure-batch 15 and `az` sign it as it arrived, still percent-encoded
  (`files/wd%2Fa.txt`); msrest (azure-batch 14) signs it with `%2F` and `%5C` decoded;
- Content-Length: SDK 15 signs "0" for a body-less write it sends without one; msrest
  signs the header as sent.

Signatures are compared with `hmac.compare_digest`. A failure is 403
`AuthenticationFailed` whose detail shows the string the server signed (never a key).

Bearer tokens (Microsoft Entra ID) are accepted only when the emulator serves HTTPS
(azure-core sends them over TLS only): any well-formed JWT, unverified. That is a test
convenience for code that uses `DefaultAzureCredential`, not security.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import parse_qs

from batchflow.emulator.errors import EmulatorError

__all__ = ["Account", "authenticate", "string_to_sign"]

_STANDARD = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)
#: How far a request's ocp-date may be from the server's clock (Batch: 15 minutes).
MAX_SKEW = 15 * 60
_FAILED = (
    "Server failed to authenticate the request. Make sure the value of Authorization "
    "header is formed correctly including the signature."
)


class Account:
    """The emulated account: its name and key (the key never leaves this object)."""

    def __init__(self, name: str, key: str) -> None:
        self.name = name
        try:
            self._key = base64.b64decode(key, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the account key is not valid base64") from None
        if not self._key:
            raise ValueError("the account key is empty")

    def sign(self, text: str) -> str:
        """Base64 of HMAC-SHA256 over `text` with the account key."""
        digest = hmac.new(self._key, text.encode(), hashlib.sha256).digest()
        return base64.b64encode(digest).decode()


def string_to_sign(
    method: str,
    headers: Mapping[str, str],
    account: str,
    path: str,
    query: str,
    *,
    content_length: str | None = None,
) -> str:
    """Batch's string to sign; `headers` keyed by lower-cased name, `path` as signed,
    `query` the raw query string, `content_length` the value to sign if not the header."""
    values = [headers.get(name, "") for name in _STANDARD]
    if content_length is not None:
        values[2] = content_length
    text = method + "\n" + "\n".join(values) + "\n"
    ocp = sorted((k, v) for k, v in headers.items() if "ocp-" in k and v)
    text += "".join(f"{k}:{v}\n" for k, v in ocp)
    text += f"/{account}{path}"
    params = parse_qs(query)
    for name in sorted(params):
        value = params[name][0]
        if value:
            text += f"\n{name}:{value}"
    return text


def _candidates(
    method: str, headers: Mapping[str, str], account: str, raw_path: str, query: str
) -> list[str]:
    paths = [raw_path]
    decoded = raw_path.replace("%2F", "/").replace("%2f", "/").replace("%5C", "\\")
    decoded = decoded.replace("%5c", "\\")
    if decoded != raw_path:
        paths.append(decoded)
    lengths: list[str | None] = [None]
    given = headers.get("content-length")
    if method not in ("GET", "HEAD") and not given:
        lengths.append("0")
    if given == "0":
        lengths.append("")
    return [
        string_to_sign(method, headers, account, path, query, content_length=length)
        for path in paths
        for length in lengths
    ]


def _fail(detail: str) -> EmulatorError:
    return EmulatorError(
        "AuthenticationFailed", _FAILED, values=(("AuthenticationErrorDetail", detail),)
    )


def _check_date(headers: Mapping[str, str]) -> None:
    stamp = headers.get("ocp-date") or headers.get("date")
    if not stamp:
        raise _fail("The request has neither an ocp-date nor a Date header.")
    try:
        moment = parsedate_to_datetime(stamp)
    except (TypeError, ValueError):
        raise _fail(f"The date '{stamp}' is not an RFC 1123 date.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    skew = abs((datetime.now(UTC) - moment).total_seconds())
    if skew > MAX_SKEW:
        raise _fail(
            f"Request date header too old: '{stamp}' is more than 15 minutes from the "
            "server's time."
        )


def _well_formed_jwt(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3 or not all(parts[:2]):
        return False
    try:
        for part in parts[:2]:
            decoded = base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))
            if not isinstance(json.loads(decoded), dict):
                return False
    except (binascii.Error, ValueError):
        return False
    return True


def authenticate(
    account: Account,
    method: str,
    headers: Mapping[str, str],
    raw_path: str,
    query: str,
    *,
    tls: bool,
) -> None:
    """Accept the request or raise 403 `AuthenticationFailed` (401 for a bad token)."""
    authorization = headers.get("authorization", "")
    scheme, _, credentials = authorization.partition(" ")
    if scheme.lower() == "bearer":
        if not tls:
            raise _fail("Bearer tokens are accepted only when the emulator serves HTTPS (--tls).")
        if not _well_formed_jwt(credentials.strip()):
            raise EmulatorError(
                "InvalidAuthenticationInfo",
                "The bearer token is not a well-formed JSON Web Token.",
                status=401,
            )
        return
    if scheme != "SharedKey":
        raise _fail("The request has no Authorization header of the SharedKey scheme.")
    name, _, signature = credentials.strip().partition(":")
    if name != account.name:
        raise _fail(f"The account '{name}' is not this emulator's account '{account.name}'.")
    _check_date(headers)
    candidates = _candidates(method, headers, account.name, raw_path, query)
    given = signature.encode()
    matched = False
    for text in candidates:
        matched |= hmac.compare_digest(account.sign(text).encode(), given)
    if not matched:
        raise _fail(
            "The MAC signature found in the HTTP request is not the same as any computed "
            f"signature. Server used following string to sign: '{candidates[0]}'."
        )
