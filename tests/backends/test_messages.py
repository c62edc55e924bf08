"""Backends speak Batch's language: their errors name no CLI flag or command, which the
CLI adds from the error's code in one table (`cli/output.py` ADVICE)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import batchflow

PACKAGE = Path(batchflow.__file__).parent
#: Where the errors that reach the CLI and the emulator are raised.
SOURCES = sorted(
    path for folder in ("backends", "storage") for path in (PACKAGE / folder).rglob("*.py")
)
#: A command-line flag (`--replace`) or a batchflow command (`batchflow delete`).
CLI_WORDS = re.compile(r"(?<![\w-])--[a-z][\w-]*|`batchflow [a-z]")


def raised_text(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, text) of every string literal in a `raise` statement."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for part in ast.walk(node.exc):
                if isinstance(part, ast.Constant) and isinstance(part.value, str):
                    found.append((part.lineno, part.value))
    return found


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_backend_errors_name_no_cli_flag(path: Path) -> None:
    tree = ast.parse(path.read_text(), str(path))
    found = [(line, text) for line, text in raised_text(tree) if CLI_WORDS.search(text)]
    assert not found, f"{path.name}: {found}"


def test_the_scan_sees_a_flag_in_a_raise() -> None:
    code = "raise BackendError(f'job {x} changed; submit with ' '--replace', code='X')"
    assert any(CLI_WORDS.search(text) for _, text in raised_text(ast.parse(code)))
