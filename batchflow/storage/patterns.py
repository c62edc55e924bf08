"""Batch `filePattern` matching: which files of a task an output file spec selects.

The rules are Azure Batch's (Linux nodes):

- `*` matches any run of characters within one name, `?` one character, `[abc]` / `[a-c]`
  one of a set, `[!abc]` (or `[^abc]`) one character not in it; `abc[*]` matches a literal `*`.
- `**` as a whole path segment matches any number of directories, including none.
- A name that starts with `.` is matched by a wildcard only when the pattern spells the dot
  (`*.gif` does not match `.a.gif`, `.*.gif` does); `**` does not descend into such
  directories.
- `$VAR` and `${VAR}` are expanded from the task's environment before matching; an unknown
  variable is left as written.
- A relative pattern is relative to the working directory and may leave it (`../std*.txt`
  reaches `stdout.txt` and `stderr.txt` in the task directory); an absolute one is taken as is.
- Only files match, never directories; symbolic links to files count as files.

Each match comes with its *name*: its path under the pattern's non-wildcard base
(`out/**/*.txt` gives `a/b.txt` for `out/a/b.txt`; `../std*.txt` gives `stdout.txt`); a
pattern without wildcards names its file by its base name.

>>> pattern_has_wildcard("out/**/*.txt"), pattern_has_wildcard("out/result.csv")
(True, False)
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["expand_variables", "match_files", "pattern_has_wildcard"]

_VARIABLE = re.compile(
    r"\$(?:\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)
# Characters that have a meaning inside a regex character class and must be escaped there;
# `-` is left alone so that ranges keep working.
_CLASS_SPECIALS = frozenset("\\[]^&~|")


@dataclass(frozen=True, slots=True)
class _Segment:
    """One `/`-separated piece of a pattern: a literal name, `**`, or a wildcard regex."""

    text: str
    regex: re.Pattern[str] | None = None
    globstar: bool = False

    @property
    def literal(self) -> bool:
        return self.regex is None and not self.globstar


def expand_variables(pattern: str, env: Mapping[str, str]) -> str:
    """`pattern` with `$VAR` and `${VAR}` replaced from `env`; unknown names stay as written."""
    if "$" not in pattern:
        return pattern

    def substitute(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("bare")
        return env.get(name, match.group(0))

    return _VARIABLE.sub(substitute, pattern)


def _compile_segment(text: str) -> _Segment:
    """Translate one segment of a pattern into a literal name or an anchored regex."""
    if text == "**":
        return _Segment(text, globstar=True)
    out: list[str] = []
    wild = False
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "*":
            if not out or out[-1] != "[^/]*":  # `a**b` is `a*b` within one segment
                out.append("[^/]*")
            wild = True
        elif char == "?":
            out.append("[^/]")
            wild = True
        elif char == "[":
            j = i + 1
            if j < n and text[j] in "!^":
                j += 1
            if j < n and text[j] == "]":  # `[]abc]`: a `]` first is a member
                j += 1
            while j < n and text[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal `[`
                out.append(re.escape(char))
            else:
                body = text[i + 1 : j]
                negate = body[:1] in ("!", "^")
                if negate:
                    body = body[1:]
                members = "".join("\\" + c if c in _CLASS_SPECIALS else c for c in body)
                out.append(f"[{'^/' if negate else ''}{members}]")
                wild = True
                i = j
        else:
            out.append(re.escape(char))
        i += 1
    if not wild:
        return _Segment(text)
    try:
        return _Segment(text, regex=re.compile("".join(out), re.DOTALL))
    except re.error as exc:  # e.g. a reversed range `[z-a]`
        raise ValueError(f"filePattern segment '{text}' is not a valid pattern: {exc}") from None


def _split(pattern: str) -> tuple[bool, list[_Segment]]:
    """(is absolute, segments) of a pattern; empty and `.` segments are dropped."""
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    return pattern.startswith("/"), [_compile_segment(p) for p in parts]


def pattern_has_wildcard(pattern: str) -> bool:
    """Whether `pattern` has a wildcard, i.e. whether a destination `path` is a prefix
    (wildcards) or the full blob name (none)."""
    return any(not segment.literal for segment in _split(pattern)[1])


def match_files(
    pattern: str, working_dir: Path, env: Mapping[str, str] | None = None
) -> list[tuple[Path, str]]:
    """The files `pattern` matches, as `(path, name)` sorted by name (Batch `filePattern`
    semantics, see the module docstring).

    `env` is the task's environment for `$VAR` expansion (default: this process's).
    Raises `ValueError` for a pattern that cannot be compiled (e.g. `[z-a]`).

    >>> match_files("../std*.txt", task_dir / "wd")  # doctest: +SKIP
    [(PosixPath('.../stderr.txt'), 'stderr.txt'), (PosixPath('.../stdout.txt'), 'stdout.txt')]
    """
    expanded = expand_variables(pattern, os.environ if env is None else env)
    absolute, segments = _split(expanded)
    first_wild = next((i for i, s in enumerate(segments) if not s.literal), len(segments))
    base_parts = [s.text for s in segments[:first_wild]]
    root = Path("/") if absolute else working_dir
    if first_wild == len(segments):
        if not base_parts:
            return []
        single = root.joinpath(*base_parts)
        return [(single, base_parts[-1])] if single.is_file() else []
    base = root.joinpath(*base_parts)
    found: dict[str, tuple[Path, str]] = {}
    for found_path, parts in _walk(str(base), segments[first_wild:], ()):
        name = posixpath.normpath("/".join(parts))
        if name == ".." or name.startswith("../"):  # `..` after a wildcard: keep it flat
            name = parts[-1]
        found.setdefault(found_path, (Path(found_path), name))
    return sorted(found.values(), key=lambda match: (match[1], str(match[0])))


def _visible(name: str, segment: _Segment) -> bool:
    """Batch's dot rule: a wildcard matches a leading `.` only if the pattern spells it."""
    return not name.startswith(".") or segment.text.startswith(".")


def _walk(
    directory: str, segments: list[_Segment], parts: tuple[str, ...]
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """Yield (file path, matched names) for `segments` applied below `directory`."""
    segment, rest = segments[0], segments[1:]
    if segment.literal:
        path = os.path.join(directory, segment.text)
        if rest:
            if os.path.isdir(path):
                yield from _walk(path, rest, (*parts, segment.text))
        elif os.path.isfile(path):
            yield path, (*parts, segment.text)
        return
    try:
        entries = list(os.scandir(directory))
    except OSError:  # missing, not a directory, unreadable: nothing matches here
        return
    if segment.globstar:
        if rest:
            yield from _walk(directory, rest, parts)  # `**` as zero directories
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir(follow_symlinks=False):
                yield from _walk(entry.path, segments, (*parts, entry.name))
            elif not rest and entry.is_file():  # a trailing `**` takes every file below
                yield entry.path, (*parts, entry.name)
        return
    assert segment.regex is not None
    for entry in entries:
        if not segment.regex.fullmatch(entry.name) or not _visible(entry.name, segment):
            continue
        if rest:
            if entry.is_dir():
                yield from _walk(entry.path, rest, (*parts, entry.name))
        elif entry.is_file():
            yield entry.path, (*parts, entry.name)
