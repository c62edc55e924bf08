"""Batch `filePattern` semantics (`match_files`), output blob naming and uploadCondition."""

from __future__ import annotations

from pathlib import Path

import pytest

from batchflow.storage import match_files
from batchflow.storage.outputs import blob_name, should_upload
from batchflow.storage.patterns import expand_variables, pattern_has_wildcard

FILES = [
    "a.txt",
    "b.txt",
    "abc",
    "abcdef",
    "abc*",
    ".hidden.txt",
    ".a.gif",
    "x.gif",
    "c1.log",
    "c2.log",
    "d3.log",
    "out/r.txt",
    "out/a/b.txt",
    "out/a/c/d.txt",
    "out/a/.f.txt",
    "out/.git/e.txt",
    "out/empty/.keep",
]


@pytest.fixture
def task_dir(tmp_path: Path) -> Path:
    """A task directory: stdout/stderr next to `wd/` holding FILES."""
    for name in ("stdout.txt", "stderr.txt"):
        (tmp_path / name).write_text(name)
    for name in FILES:
        path = tmp_path / "wd" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(name)
    return tmp_path


@pytest.mark.parametrize(
    ("pattern", "names"),
    [
        # `*` within a name; dot files are not matched by a wildcard
        ("*.txt", ["a.txt", "b.txt"]),
        # ... unless the pattern spells the dot
        (".*.txt", [".hidden.txt"]),
        ("*.gif", ["x.gif"]),
        (".*.gif", [".a.gif"]),
        # `*` matches zero characters too (`abc*` matches `abc`)
        ("abc*", ["abc", "abc*", "abcdef"]),
        # a literal `*` escaped with brackets
        ("abc[*]", ["abc*"]),
        # `?` is exactly one character
        ("?.txt", ["a.txt", "b.txt"]),
        ("abc???", ["abcdef"]),
        # character classes, ranges and negation (`!` as Batch documents, `^` as shells do)
        ("[ab].txt", ["a.txt", "b.txt"]),
        ("[!a].txt", ["b.txt"]),
        ("[^a].txt", ["b.txt"]),
        ("c[1-2].log", ["c1.log", "c2.log"]),
        ("[a-c]?.log", ["c1.log", "c2.log"]),
        # `**` is any number of directories, including none; hidden directories are skipped
        ("**/*.txt", ["a.txt", "b.txt", "out/a/b.txt", "out/a/c/d.txt", "out/r.txt"]),
        # names are kept relative to the non-wildcard base of the pattern
        ("out/**/*.txt", ["a/b.txt", "a/c/d.txt", "r.txt"]),
        # a trailing `**` takes every (visible) file below
        ("out/**", ["a/b.txt", "a/c/d.txt", "r.txt"]),
        ("out/*/b.txt", ["a/b.txt"]),
        ("out/**/.*", ["a/.f.txt", "empty/.keep"]),
        # no wildcard: the file itself, named by its base name
        ("out/r.txt", ["r.txt"]),
        ("./out//r.txt", ["r.txt"]),
        # a directory is never a match
        ("out", []),
        ("out/*", ["r.txt"]),
        # reaching the task directory, where stdout.txt and stderr.txt live
        ("../std*.txt", ["stderr.txt", "stdout.txt"]),
        ("../stdout.txt", ["stdout.txt"]),
        # nothing matches: an empty list, not an error
        ("nothing*", []),
        ("missing/dir/*.txt", []),
        ("missing.txt", []),
    ],
)
def test_match_files_follows_batch_file_pattern_rules(
    task_dir: Path, pattern: str, names: list[str]
) -> None:
    matches = match_files(pattern, task_dir / "wd", {})
    assert [name for _, name in matches] == names
    for path, name in matches:
        assert path.is_file()
        assert path.as_posix().endswith(name)


def test_match_files_expands_environment_variables_before_matching(task_dir: Path) -> None:
    env = {"SUB": "out", "EXT": "txt"}
    assert [n for _, n in match_files("$SUB/*.$EXT", task_dir / "wd", env)] == ["r.txt"]
    assert [n for _, n in match_files("${SUB}/r.txt", task_dir / "wd", env)] == ["r.txt"]
    # an unknown variable stays as written, so it matches nothing here
    assert match_files("$NOPE/*.txt", task_dir / "wd", env) == []


def test_match_files_uses_the_process_environment_by_default(
    task_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCHFLOW_TEST_SUB", "out")
    assert [n for _, n in match_files("$BATCHFLOW_TEST_SUB/*", task_dir / "wd")] == ["r.txt"]


def test_match_files_takes_absolute_patterns(task_dir: Path) -> None:
    pattern = f"{task_dir}/wd/out/*.txt"
    assert match_files(pattern, Path("/nonexistent")) == [(task_dir / "wd/out/r.txt", "r.txt")]


def test_match_files_follows_symlinked_files_but_not_directory_loops(task_dir: Path) -> None:
    wd = task_dir / "wd"
    (wd / "link.txt").symlink_to(wd / "a.txt")
    (wd / "out" / "loop").symlink_to(wd / "out", target_is_directory=True)
    names = [n for _, n in match_files("**/*.txt", wd, {})]
    assert "link.txt" in names
    assert not any(name.startswith("out/loop") for name in names)


def test_match_files_rejects_an_invalid_class(task_dir: Path) -> None:
    with pytest.raises(ValueError, match="z-a"):
        match_files("[z-a].txt", task_dir / "wd", {})


def test_an_unclosed_bracket_is_a_literal(task_dir: Path) -> None:
    (task_dir / "wd" / "odd[name").write_text("x")
    assert [n for _, n in match_files("odd[*", task_dir / "wd", {})] == ["odd[name"]


@pytest.mark.parametrize(
    ("pattern", "wild"),
    [
        ("out/result.csv", False),
        ("../stdout.txt", False),
        ("*.csv", True),
        ("out/**/x", True),
        ("file?.txt", True),
        ("abc[*]", True),  # brackets are wildcard syntax, even when they match one char
    ],
)
def test_pattern_has_wildcard(pattern: str, wild: bool) -> None:
    assert pattern_has_wildcard(pattern) is wild


def test_expand_variables_leaves_text_without_dollar_alone() -> None:
    assert expand_variables("a/b*.txt", {"a": "x"}) == "a/b*.txt"
    assert expand_variables("$A-${B}$C", {"A": "1", "B": "2"}) == "1-2$C"


@pytest.mark.parametrize(
    ("pattern", "path", "name", "blob"),
    [
        # no wildcard: `path` is the full blob name
        ("out/result.csv", "results/final.csv", "result.csv", "results/final.csv"),
        # no wildcard, no path: the container root, under the file's name
        ("out/result.csv", None, "result.csv", "result.csv"),
        # wildcards: `path` is a virtual directory prefix
        ("*.txt", "task1", "a.txt", "task1/a.txt"),
        ("*.txt", "task1/", "a.txt", "task1/a.txt"),
        # `**`: the sub-path below the non-wildcard base is kept under the prefix
        ("out/**/*.txt", "p", "a/b.txt", "p/a/b.txt"),
        ("**/*.txt", None, "out/a/b.txt", "out/a/b.txt"),
        # the documented example: `../std*.txt` with path `mytask`
        ("../std*.txt", "mytask", "stderr.txt", "mytask/stderr.txt"),
        ("*.txt", "", "a.txt", "a.txt"),
    ],
)
def test_blob_name(pattern: str, path: str | None, name: str, blob: str) -> None:
    assert blob_name(pattern, path, name) == blob


@pytest.mark.parametrize(
    ("condition", "exit_code", "upload"),
    [
        ("taskSuccess", 0, True),
        ("tasksuccess", 1, False),
        ("TASKSUCCESS", -9, False),
        ("taskFailure", 0, False),
        ("TaskFailure", 2, True),
        ("taskfailure", -15, True),
        ("taskCompletion", 0, True),
        ("TaskCompletion", 3, True),
    ],
)
def test_should_upload(condition: str, exit_code: int, upload: bool) -> None:
    assert should_upload(condition, exit_code) is upload


def test_should_upload_rejects_an_unknown_condition() -> None:
    with pytest.raises(ValueError, match="taskComplete"):
        should_upload("taskComplete", 0)
