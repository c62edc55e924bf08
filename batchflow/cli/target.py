"""Where the CLI's commands run: chosen once per command, for every command.

The application's callback records `--stack` / `--stack-outputs` (`choose`); options
written after the command name are moved in front of it first (`hoist`), so
`batchflow submit flow.py --stack dev` and `batchflow --stack dev submit flow.py` are the
same. The target itself is resolved on first use, once (`target`): a command that needs
no backend (validate, export) never runs `pulumi`. `backend` is what commands call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchflow.backends.base import Backend
    from batchflow.stack import AzureTarget

__all__ = ["GLOBAL_OPTIONS", "backend", "choose", "hoist", "target"]

#: The target options (each takes a value).
GLOBAL_OPTIONS = ("--stack", "--stack-outputs")
#: Commands whose own options these names would shadow, or that never use a target.
_OWN_OPTIONS = ("infra", "emulator")

_choice: dict[str, str | None] = {"stack": None, "stack_outputs": None}
_resolved: list[AzureTarget | None] = []


def choose(stack: str | None, stack_outputs: str | None) -> None:
    """Record the target options (the application's callback)."""
    _choice["stack"] = stack
    _choice["stack_outputs"] = stack_outputs
    _resolved.clear()


def target() -> AzureTarget | None:
    """The Azure target of this command, or None for the local engine (resolved once)."""
    if not _resolved:
        from batchflow.stack import resolve_target

        _resolved.append(
            resolve_target(stack=_choice["stack"], stack_outputs=_choice["stack_outputs"])
        )
    return _resolved[0]


def backend(
    state_dir: Path | None = None, *, slots: int | None = None, nodes: int | None = None
) -> Backend:
    """The backend of this command: the Azure target's, or the local engine on
    `state_dir` (`slots` and `nodes` shape the local engine only)."""
    from batchflow.backends import get_backend
    from batchflow.exceptions import BatchflowError

    found = target()
    if found is None:
        return get_backend("local", state_dir=state_dir, slots=slots, nodes=nodes)
    given = [name for name, value in (("--slots", slots), ("--nodes", nodes)) if value]
    if given:
        raise BatchflowError(
            f"{given[0]} shapes the local engine; on {found.describe()} the pool decides"
        )
    return get_backend("azure", account=found)


def hoist(args: list[str]) -> list[str]:
    """`args` with the target options moved in front of the command name (they belong
    to the application). Left alone for commands with options of the same name."""
    end = args.index("--") if "--" in args else len(args)
    command = _command_index(args[:end])
    if command is None or args[command] in _OWN_OPTIONS:
        return args
    moved: list[str] = []
    rest: list[str] = []
    i = command + 1
    while i < end:
        arg = args[i]
        name = arg.split("=", 1)[0]
        if name in GLOBAL_OPTIONS:
            if "=" in arg:
                moved.append(arg)
            else:
                moved.extend(args[i : i + 2])
                i += 1
        else:
            rest.append(arg)
        i += 1
    if not moved:
        return args
    return args[:command] + moved + [args[command]] + rest + args[end:]


def _command_index(args: list[str]) -> int | None:
    """Where the command name is: the first argument that is neither an option nor the
    value of a target option."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in GLOBAL_OPTIONS:
            i += 2
            continue
        if not arg.startswith("-"):
            return i
        i += 1
    return None


def command_name(args: list[str]) -> str | None:
    """The command `args` run (`submit`), or None."""
    index = _command_index(args[: args.index("--")] if "--" in args else args)
    return None if index is None else args[index]
