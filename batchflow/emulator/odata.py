"""Batch's OData `$filter` and `$select`: a tokenizer and a recursive-descent parser.

The grammar is the subset Batch documents (batch-semantics.md 5.6):

    expr       := or
    or         := and ("or" and)*
    and        := unary ("and" unary)*
    unary      := "not" unary | primary
    primary    := "(" expr ")" | "startswith" "(" path "," string ")" | path op literal
    op         := eq | ne | gt | ge | lt | le
    path       := name ("/" name)*              e.g. executionInfo/result
    literal    := 'text' ('' escapes a quote) | integer | true | false | null
                | datetime'2024-01-01T00:00:00Z' | 2024-01-01T00:00:00Z

It yields the service's filter tree (`backends.local.filters`), which decides which
properties can be filtered and how. Text the grammar does not take is a 400
`InvalidQueryParameterValue` naming what and where; nothing is ever ignored.

    >>> parse_filter("state eq 'completed' and startswith(id, 'bulk-')")
    Logical(op='and', items=(Compare(path='state', op='eq', value='completed'), \
StartsWith(path='id', prefix='bulk-')))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from batchflow.backends.local.filters import Compare, Filter, Logical, Not, StartsWith, Value
from batchflow.emulator.errors import EmulatorError

__all__ = ["parse_filter", "parse_select"]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<datetime>datetime'[^']*')
      | (?P<moment>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
      | (?P<number>-?\d+(?:\.\d+)?)
      | (?P<name>[A-Za-z_$][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
      | (?P<punct>[(),])
    )""",
    re.VERBOSE,
)
_OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le")


@dataclass(frozen=True)
class _Token:
    kind: str  # string, datetime, moment, number, name, punct, end
    text: str
    pos: int


def _refuse(parameter: str, text: str, reason: str) -> EmulatorError:
    return EmulatorError(
        "InvalidQueryParameterValue",
        f"The value for one of the HTTP query parameters is not in the correct format. "
        f"{parameter}: {reason}",
        values=(
            ("QueryParameterName", parameter),
            ("QueryParameterValue", text),
            ("Reason", reason),
        ),
    )


def _tokens(text: str) -> list[_Token]:
    found: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            bad = re.match(r"\w+|\S", text[start:])
            shown = bad.group(0) if bad else text[start:]
            raise _refuse("$filter", text, f"unexpected '{shown}' at {start}")
        kind = match.lastgroup or "punct"
        found.append(_Token(kind, match.group(kind), match.start(kind)))
        pos = match.end()
    found.append(_Token("end", "", len(text)))
    return found


def _moment(text: str, source: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _refuse("$filter", source, f"'{text}' is not a datetime") from None
    if moment.tzinfo is None:
        raise _refuse("$filter", source, f"'{text}' has no time zone (end it with Z)")
    return moment


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.pos = 0

    @property
    def here(self) -> _Token:
        return self.tokens[self.pos]

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def fail(self, reason: str) -> EmulatorError:
        return _refuse("$filter", self.text, reason)

    def word(self, *words: str) -> bool:
        token = self.here
        if token.kind == "name" and token.text.lower() in words:
            self.pos += 1
            return True
        return False

    def expect(self, punct: str) -> None:
        token = self.take()
        if token.kind != "punct" or token.text != punct:
            found = token.text or "the end"
            raise self.fail(f"expected '{punct}' at {token.pos}, found '{found}'")

    def parse(self) -> Filter:
        node = self.disjunction()
        if self.here.kind != "end":
            raise self.fail(f"unexpected '{self.here.text}' at {self.here.pos}")
        return node

    def disjunction(self) -> Filter:
        items = [self.conjunction()]
        while self.word("or"):
            items.append(self.conjunction())
        return items[0] if len(items) == 1 else Logical("or", tuple(items))

    def conjunction(self) -> Filter:
        items = [self.unary()]
        while self.word("and"):
            items.append(self.unary())
        return items[0] if len(items) == 1 else Logical("and", tuple(items))

    def unary(self) -> Filter:
        if self.word("not"):
            return Not(self.unary())
        return self.primary()

    def primary(self) -> Filter:
        token = self.here
        if token.kind == "punct" and token.text == "(":
            self.take()
            node = self.disjunction()
            self.expect(")")
            return node
        if token.kind != "name":
            found = token.text or "the end"
            raise self.fail(f"expected a property at {token.pos}, found '{found}'")
        self.take()
        name = token.text
        if self.here.kind == "punct" and self.here.text == "(":
            if name.lower() != "startswith":
                raise self.fail(f"the function '{name}' is not supported (only startswith)")
            self.take()
            path = self.take()
            if path.kind != "name":
                raise self.fail(f"startswith takes a property first, not '{path.text}'")
            self.expect(",")
            prefix = self.literal()
            if not isinstance(prefix, str):
                raise self.fail("startswith takes a string literal second")
            self.expect(")")
            return StartsWith(path.text, prefix)
        op = self.take()
        if op.kind != "name" or op.text.lower() not in _OPERATORS:
            found = op.text or "the end"
            raise self.fail(
                f"expected an operator ({', '.join(_OPERATORS)}) after '{name}', found '{found}'"
            )
        return Compare(name, op.text.lower(), self.literal())

    def literal(self) -> Value:
        token = self.take()
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        if token.kind == "number":
            return float(token.text) if "." in token.text else int(token.text)
        if token.kind == "datetime":
            return _moment(token.text[9:-1], self.text)
        if token.kind == "moment":
            return _moment(token.text, self.text)
        if token.kind == "name" and token.text in ("true", "false"):
            return token.text == "true"
        if token.kind == "name" and token.text == "null":
            return None
        found = token.text or "the end"
        raise self.fail(f"expected a literal at {token.pos}, found '{found}'")


def parse_filter(text: str | None) -> Filter | None:
    """The filter tree of a `$filter` value (None when absent or blank)."""
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


_SELECT = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:/[A-Za-z][A-Za-z0-9]*)*$")


def parse_select(text: str | None) -> tuple[str, ...] | None:
    """The top-level properties a `$select` keeps (`id,state`), or None for all."""
    if text is None or not text.strip():
        return None
    names = tuple(n.strip() for n in text.split(","))
    for name in names:
        if not _SELECT.match(name):
            raise _refuse("$select", text, f"'{name}' is not a property name")
    return tuple(n.split("/")[0] for n in names)
