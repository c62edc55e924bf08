"""Files between tasks, as `validate` sees them: a parent's files a child cannot see.

Each task starts in its own working directory, possibly on another node, so a file one
task writes reaches another only through storage: `outputs=` on the parent and the parent
in the child's `inputs=` (the hand-off, see `Job.handoffs`), or Batch's output and resource
files. Two heuristics warn where a flow seems to forget that:

- `stranded_files`: a child waits for a parent that leaves files (a download, an archive,
  a redirect) in its working directory and hands nothing over (`no-handoff`);
- `unhanded_outputs`: a child's command line (or an input's name) names a file that a
  parent it depends on collects with `outputs=`, but that parent's outputs are not handed
  to it (`not-handed`).
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from fnmatch import fnmatchcase

from batchflow.dsl import Job
from batchflow.graph import Graph

__all__ = ["Warn", "stranded_files", "unhanded_outputs"]

#: `warn(code, message, task position, field)`, as `validation` collects warnings.
Warn = Callable[[str, str, "int | None", "str | None"], None]

# A command that leaves files in its working directory (downloads, archives, redirects).
_WRITES_FILES = re.compile(r"\b(?:wget|curl\s[^|;&]*-[oO]|unzip|tar\s+-?x|gunzip)\b|>\s*[\w.-]+")
_SHARED = "AZ_BATCH_NODE_SHARED_DIR"
# The words of a command line that could name a file (split at blanks, quotes, operators).
_WORD = re.compile(r"[^\s'\"<>|;&()`=,]+")
_GLOB = frozenset("*?[")


def stranded_files(job: Job, graph: Graph, warn: Warn, python: bool) -> None:
    """Warn when a task waits for a parent whose files it can never see."""
    ids, commands, specs, inputs = job._ids, job._commands, job._specs, job._inputs
    # Command lines that leave files in the working directory (asked once per distinct line).
    writers = {
        command
        for command in set(commands)
        if _WRITES_FILES.search(command) and _SHARED not in command
    }
    if not writers:
        return
    # Parents that leave files in their own working directory and hand nothing over.
    strands = {
        pos
        for pos, command in enumerate(commands)
        if command in writers
        and not job._outputs[pos]
        and not (specs[pos] or {}).get("outputFiles")
    }
    if not strands:
        return
    for pos, ds in enumerate(graph.deps):
        if not ds or strands.isdisjoint(ds):
            continue
        if inputs[pos] or (specs[pos] or {}).get("resourceFiles") or _SHARED in commands[pos]:
            continue
        parent = ids[next(d for d in ds if d in strands)]
        how = (
            f"outputs=[...] on the parent and '{parent}' in inputs=[...] here"
            if python
            else "outputFiles on the parent and resourceFiles here"
        )
        warn(
            "no-handoff",
            f"waits for '{parent}', but each task has its own working directory and "
            f"'{parent}' uploads no outputFiles, so this task cannot see its files "
            f"(pass them through storage: {how}; the tasks may run on different nodes)",
            pos,
            "dependsOn",
        )


def unhanded_outputs(job: Job, graph: Graph, warn: Warn, python: bool) -> None:
    """Warn when a task names a file a parent collects but is not handed that parent.

    A heuristic: the words of the command line (and the names of its `inputs=`) are
    matched against the base name of each `outputs=` pattern of the tasks it depends on
    (a literal name, or a glob such as `*.csv`); parents whose outputs it is handed are
    skipped. A word that is itself a glob (`*.csv`) matches a literal pattern it covers.
    """
    outputs = job._outputs
    if not any(outputs):
        return
    ids, commands, inputs = job._ids, job._commands, job._inputs
    words_of: dict[str, tuple[str, ...]] = {}
    for pos, ds in enumerate(graph.deps):
        if not ds:
            continue
        parents = [d for d in ds if outputs[d]]
        if not parents:
            continue
        handed = {i.lower() for i in job.handoffs(pos)}
        parents = [d for d in parents if ids[d].lower() not in handed]
        if not parents:
            continue
        command = commands[pos]
        words = words_of.get(command)
        if words is None:
            words = words_of[command] = _names_in(command)
        names = tuple(posixpath.basename(p.rstrip("/")) for p in inputs[pos])
        found = _first_match(parents, outputs, words, names)
        if found is None:
            continue
        parent, name, field = ids[found[0]], found[1], found[2]
        if python:
            fix = (
                f"add the task '{parent}' (or its map group) to inputs=[...]; its files then "
                f"appear under $AZ_BATCH_JOB_ID/{parent}/ in the working directory"
            )
        else:  # a JSON flow has no outputs=, so this is for completeness
            fix = "upload it with outputFiles and fetch it with resourceFiles"
        warn(
            "not-handed",
            f"names '{name}', which '{parent}' collects with outputs=, but the outputs of "
            f"'{parent}' are not handed to this task, so it cannot see them (each task has "
            f"its own working directory, possibly on another node); {fix}",
            pos,
            field,
        )


def _names_in(command: str) -> tuple[str, ...]:
    """The base names of the words of a command line that could be files."""
    names: dict[str, None] = {}
    for word in _WORD.findall(command):
        name = posixpath.basename(word.rstrip("/"))
        if name and name not in (".", ".."):
            names[name] = None
    return tuple(names)


def _first_match(
    parents: list[int],
    outputs: list[tuple[str, ...]],
    words: tuple[str, ...],
    names: tuple[str, ...],
) -> tuple[int, str, str] | None:
    """(parent position, file name, field) of the first named file a parent collects."""
    for parent in parents:
        for pattern in outputs[parent]:
            if "$" in pattern:
                continue  # names made from the environment: unknown here
            base = posixpath.basename(pattern.rstrip("/"))
            if not base or all(c in "*?" for c in base):
                continue  # `*` or `**` alone would match any word
            wild = not _GLOB.isdisjoint(base)
            for word in words:
                if fnmatchcase(word, base) if wild else word == base:
                    return parent, word, "commandLine"
                if (
                    not wild
                    and not _GLOB.isdisjoint(word)
                    and word.strip("*?")
                    and (fnmatchcase(base, word))
                ):
                    return parent, base, "commandLine"
            if not wild and base in names:
                return parent, base, "inputs"
    return None
