"""The public API: `batchflow.__all__` is sorted, complete and every name resolves."""

from __future__ import annotations

import subprocess
import sys

import batchflow


def test_all_is_sorted_and_unique() -> None:
    assert list(batchflow.__all__) == sorted(set(batchflow.__all__))


def test_every_public_name_resolves_and_is_documented() -> None:
    for name in batchflow.__all__:
        value = getattr(batchflow, name)
        if name != "__version__":
            assert value.__doc__, f"{name} has no docstring"


def test_public_names_are_the_ones_users_need() -> None:
    expected = {
        "Job",
        "Task",
        "TaskGroup",
        "load",
        "validate",
        "TaskSpec",
        "JobSpec",
        "BatchflowError",
        "FlowError",
        "CycleError",
        "DuplicateTaskError",
        "UnknownTaskError",
        "InvalidFieldError",
    }
    assert expected <= set(batchflow.__all__)


def test_unknown_attribute_raises_attribute_error() -> None:
    try:
        batchflow.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "NoSuchThing" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_importing_the_cli_does_not_import_pydantic() -> None:
    code = (
        "import sys, batchflow.cli.main; "
        "heavy = [m for m in ('pydantic', 'azure', 'pulumi', 'rich', 'starlette', 'uvicorn') "
        "if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
