"""`batchflow infra plan` through typer's CliRunner: the table, the JSON, and refusals.

Bad settings or files are one line each on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from batchflow.cli.main import app
from batchflow.infra.environment import STACK_OUTPUTS
from batchflow.infra.plan import (
    NOT_CHECKED,
    SECRET_PLACEHOLDER,
    find_project_dir,
    load_stack_settings,
)

from ..conftest import REPO

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, ["infra", "plan", *args])
    assert "Traceback" not in result.stdout + result.stderr
    return result.exit_code, result.stdout, result.stderr


def project_with(tmp_path: Path, stack: str, text: str) -> Path:
    """A copy of the Pulumi project with one stack file of our own."""
    shutil.copy(REPO / "Pulumi.yaml", tmp_path / "Pulumi.yaml")
    shutil.copy(REPO / "__main__.py", tmp_path / "__main__.py")
    (tmp_path / "stacks").mkdir()
    (tmp_path / "stacks" / f"Pulumi.{stack}.yaml").write_text(text)
    return tmp_path


def test_plan_table_lists_resources_settings_and_outputs() -> None:
    code, out, err = invoke("--stack", "dev", "--project-dir", str(REPO))
    assert (code, err) == (0, "")
    assert "stack dev  14 Azure resources" in out
    for text in (
        "batch:Pool",
        "id=render",
        "minimumTls=TLS1_2",
        "0-4 spot",
        "sharedKeyAccess=true",
    ):
        assert text in out
    for output in STACK_OUTPUTS:
        assert output in out


def test_plan_json_is_machine_readable_and_stable() -> None:
    code, out, err = invoke("--stack", "prod", "--project-dir", str(REPO), "--output", "json")
    assert (code, err) == (0, "")
    plan = json.loads(out)
    assert plan["stack"] == "prod"
    assert list(plan["outputs"]) == list(STACK_OUTPUTS)
    assert plan["secretOutputs"] == []
    pools = [r for r in plan["resources"] if r["type"] == "azure-native:batch:Pool"]
    (pool,) = pools
    assert pool["settings"]["publicIPs"] == "NoPublicIPAddresses"
    assert pool["settings"]["scale"] == "autoscale 0-4 dedicated + 0-32 spot, every PT5M"
    assert pool["inputs"]["vmSize"] == "Standard_D8s_v5"
    assert pool["parent"] == "batchflow:azure:Pool::bfprod-pool-render"
    # the same stack always plans the same way: a CD pipeline can diff it
    assert invoke("--stack", "prod", "--project-dir", str(REPO), "--output", "json")[1] == out
    # provider inputs arrive in no fixed order from run to run: every map's keys are sorted
    for resource in plan["resources"]:
        assert_keys_sorted(resource["inputs"], resource["name"])


def assert_keys_sorted(value: object, where: str) -> None:
    if isinstance(value, dict):
        assert list(value) == sorted(value), where
        for key, item in value.items():
            assert_keys_sorted(item, f"{where}.{key}")
    elif isinstance(value, list):
        for n, item in enumerate(value):
            assert_keys_sorted(item, f"{where}[{n}]")


def test_plan_finds_the_project_from_a_subdirectory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO / "stacks")
    assert find_project_dir(Path.cwd()) == REPO
    code, out, _ = invoke("-s", "dev", "-O", "json")
    assert code == 0 and json.loads(out)["stack"] == "dev"


def test_one_bad_setting_is_one_line_on_stderr_and_exit_2(tmp_path: Path) -> None:
    project = project_with(
        tmp_path, "bad", "config:\n  batchflow:pools:\n    render:\n      vmSize: Standard D2s v5\n"
    )
    code, out, err = invoke("--stack", "bad", "--project-dir", str(project))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith("error: stack 'bad': batchflow:pools.render.vmSize: ")
    assert "fix: " in line and "Standard_D2s_v5" in line


def test_several_bad_settings_are_one_line_each(tmp_path: Path) -> None:
    stack = """\
config:
  batchflow:natGateway: maybe
  batchflow:pools:
    render:
      autoScale: {maxSpotNodes: 2}
      targetDedicatedNodes: 1
      id: render.v2
"""
    code, _, err = invoke(
        "--stack", "bad", "--project-dir", str(project_with(tmp_path, "bad", stack))
    )
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 3
    assert all(line.startswith("error: stack 'bad': batchflow:") for line in lines)


def test_missing_stack_file_names_the_known_stacks() -> None:
    code, out, err = invoke("--stack", "qa", "--project-dir", str(REPO))
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert "stack 'qa'" in line and "dev, prod" in line


def test_no_project_is_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = invoke("--stack", "dev")
    assert code == 2
    assert "Pulumi.yaml" in err and "--project-dir" in err


def test_malformed_stack_yaml_is_exit_2_with_its_line(tmp_path: Path) -> None:
    project = project_with(tmp_path, "bad", "config:\n  batchflow:pools: [\n")
    code, _, err = invoke("--stack", "bad", "--project-dir", str(project))
    assert code == 2
    assert "Pulumi.bad.yaml:" in err and "not valid YAML" in err


def test_stack_file_values_override_project_defaults_and_secrets_are_masked(tmp_path: Path) -> None:
    project = project_with(
        tmp_path,
        "s",
        "config:\n  batchflow:location: northeurope\n  other:token:\n    secure: v1:abc\n",
    )
    settings = load_stack_settings(project, "s")
    assert settings.values["batchflow:location"] == "northeurope"
    assert settings.values["batchflow:storageSku"] == "Standard_LRS"  # Pulumi.yaml default
    assert settings.values["other:token"] == SECRET_PLACEHOLDER
    assert settings.secret_keys == ("other:token",)
    assert settings.pulumi_strings()["batchflow:pools"] == '{"default": {}}'


def test_plan_says_what_it_cannot_check() -> None:
    code, out, _ = invoke("--stack", "dev", "--project-dir", str(REPO))
    assert code == 0
    tail = out[out.index("not checked offline") :]
    assert "quotas" in tail and "Spot" in tail
    assert "replacements of existing resources" in tail
    code, out, _ = invoke("--stack", "dev", "--project-dir", str(REPO), "--output", "json")
    assert list(json.loads(out)["notChecked"]) == list(NOT_CHECKED)


def test_plan_marks_protected_resources_and_pool_replacements() -> None:
    code, out, _ = invoke("--stack", "prod", "--project-dir", str(REPO), "--output", "json")
    assert code == 0
    resources = json.loads(out)["resources"]
    protected = {r["type"] for r in resources if r["protect"]}
    assert "azure-native:storage:StorageAccount" in protected
    (pool,) = [r for r in resources if r["type"] == "azure-native:batch:Pool"]
    assert "vmSize" in pool["replaceOnChanges"]
    assert "scaleSettings" not in pool["replaceOnChanges"]
    code, text, _ = invoke("--stack", "prod", "--project-dir", str(REPO))
    assert "protected" in text


@pytest.mark.parametrize(
    ("pool", "key", "fix_word"),
    [
        # 200 slots on 2 vCPUs: Batch allows 8
        ("{vmSize: Standard_D2s_v5, taskSlotsPerNode: 200}", "taskSlotsPerNode", "at most 8"),
        # an Arm64 image on an x64 size
        ("{image: 'Canonical:ubuntu-24_04-lts:server-arm64'}", "image", "Standard_D2ps_v5"),
        # an x64 image on an Arm64 size
        ("{vmSize: Standard_D2ps_v5}", "image", "server-arm64"),
    ],
)
def test_settings_azure_rejects_are_one_line_and_exit_2(
    tmp_path: Path, pool: str, key: str, fix_word: str
) -> None:
    stack = f"config:\n  batchflow:pools:\n    render: {pool}\n"
    code, out, err = invoke(
        "--stack", "bad", "--project-dir", str(project_with(tmp_path, "bad", stack))
    )
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"error: stack 'bad': batchflow:pools.render.{key}: ")
    assert "; fix: " in line and fix_word in line


def test_two_mounts_on_ubuntu_2404_are_a_warning_not_an_error(tmp_path: Path) -> None:
    stack = """\
config:
  batchflow:pools:
    render:
      mounts: [{container: inputs}, {container: logs}]
"""
    code, out, err = invoke(
        "--stack", "w", "--project-dir", str(project_with(tmp_path, "w", stack))
    )
    assert code == 0 and "batch:Pool" in out
    (line,) = err.splitlines()
    assert line.startswith("warning: stack 'w': batchflow:pools.render.mounts: ")
    assert "Azure/Batch#190" in line and "; fix: " in line
    code, out, _ = invoke("--stack", "w", "--project-dir", str(tmp_path), "--output", "json")
    assert len(json.loads(out)["warnings"]) == 1


@pytest.mark.parametrize(
    ("key", "value", "pinned"),
    [
        # each setting whose change would replace prod's resource group or storage account
        ("location", "northeurope", "westeurope"),
        ("namePrefix", "bfprd", "bfprod"),
        ("resourceGroupName", "bfprod-rg", ""),
        ("storageAccountName", "bfprodstore", ""),
    ],
)
def test_changed_pinned_setting_is_refused_with_the_way_out(
    tmp_path: Path, key: str, value: str, pinned: str
) -> None:
    stack = yaml.safe_load((REPO / "stacks" / "Pulumi.prod.yaml").read_text())
    stack["config"][f"batchflow:{key}"] = value
    code, out, err = invoke(
        "--stack",
        "prod",
        "--project-dir",
        str(project_with(tmp_path, "prod", yaml.safe_dump(stack))),
    )
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"error: stack 'prod': batchflow:{key}: '{value}' differs from")
    assert f"set it back to '{pinned}'" in line and "protectData: false" in line


MALFORMED = [
    # a number as a top-level key: an unknown setting, not a crash
    ("config:\n  1: x\n", 1),
    # a number as a pool setting's name
    ("config:\n  batchflow:pools:\n    render: {7: x}\n", 1),
    # a number as an autoScale setting's name
    ("config:\n  batchflow:pools:\n    render: {autoScale: {3: 4}}\n", 1),
    # a number as a variable name of the start task
    (
        "config:\n  batchflow:pools:\n    render:\n"
        "      startTask: {commandLine: /bin/true, environment: {1: x}}\n",
        1,
    ),
    # a list as a variable's value
    (
        "config:\n  batchflow:pools:\n    render:\n"
        "      startTask: {commandLine: /bin/true, environment: {A: [1]}}\n",
        1,
    ),
    # a number as a pinned setting's name, and a list as a pinned value
    (
        "config:\n  batchflow:protectData: true\n  batchflow:pinnedSettings:\n"
        "    {1: x, location: [a], namePrefix: batchflow, resourceGroupName: '', "
        "storageAccountName: ''}\n",
        2,
    ),
    # null and a number as container images, a number as a registry
    (
        "config:\n  batchflow:pools:\n    render:\n"
        "      container: {images: [null, 1], registries: [5]}\n",
        3,
    ),
    # a number as a resource file's URL: one line, though the URL is read twice
    (
        "config:\n  batchflow:pools:\n    render:\n      startTask:\n"
        "        {commandLine: /bin/true, resourceFiles: [{httpUrl: 5, filePath: x}]}\n",
        1,
    ),
    # a number as the start task's command: one line, not also "is missing"
    ("config:\n  batchflow:pools:\n    render:\n      startTask: {commandLine: 123}\n", 1),
    # pools as text, tags as a list
    ("config:\n  batchflow:pools: render\n  batchflow:tags: [a]\n", 2),
    # a number where a string goes, a fraction where a whole number goes
    ("config:\n  batchflow:location: 12\n  batchflow:blobSoftDeleteDays: 3.5\n", 2),
    # config that is a list
    ("config: [1, 2]\n", 1),
    # a file that is a list
    ("- config\n", 1),
]


@pytest.mark.parametrize(("text", "lines"), MALFORMED)
def test_malformed_stack_file_is_one_line_per_problem_and_exit_2(
    tmp_path: Path, text: str, lines: int
) -> None:
    code, out, err = invoke("--stack", "m", "--project-dir", str(project_with(tmp_path, "m", text)))
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == lines, err
    assert all(line.startswith("error: ") for line in err.splitlines())


def test_yaml_numbers_as_names_and_dates_as_values_read_as_pulumi_reads_them(
    tmp_path: Path,
) -> None:
    # Pulumi hands the program JSON: the pool named 1 is "1", the date stays text.
    stack = (
        "config:\n  batchflow:pools:\n    1:\n"
        "      startTask: {commandLine: /bin/true, environment: {SINCE: 2024-01-01}}\n"
    )
    code, out, err = invoke(
        "--stack", "n", "--project-dir", str(project_with(tmp_path, "n", stack)), "-O", "json"
    )
    assert (code, err) == (0, "")
    (pool,) = [r for r in json.loads(out)["resources"] if r["type"] == "azure-native:batch:Pool"]
    assert pool["inputs"]["poolName"] == "1"
    assert pool["inputs"]["startTask"]["environmentSettings"] == [
        {"name": "SINCE", "value": "2024-01-01"}
    ]


def test_plan_says_what_the_dev_stack_leaves_open() -> None:
    code, out, _ = invoke("--stack", "dev", "--project-dir", str(REPO))
    assert code == 0
    section = out[out.index("left open") : out.index("not checked offline")]
    for words in (
        "every network (storageFirewall: false)",
        "account keys",
        "Batch account accepts shared keys",
        "pool 'render' have public IP addresses",
        "neither protected nor locked",
    ):
        assert words in " ".join(section.split()), words


def test_prod_leaves_open_only_the_batch_endpoint_its_cli_needs() -> None:
    code, out, _ = invoke("--stack", "prod", "--project-dir", str(REPO), "--output", "json")
    assert code == 0
    (line,) = json.loads(out)["leftOpen"]
    assert "batchPublicNetworkAccess: true" in line
