"""The tutorial's workflow, driven by the pinned azure-batch SDK against the emulator."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from azure.batch import models as m
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from batchflow.emulator.server import EmulatorHandle
from tests.emulator.conftest import wait_for
from tests.servers import Azurite


def job(job_id: str, **extra: Any) -> m.BatchJobCreateOptions:
    return m.BatchJobCreateOptions(id=job_id, pool_info=m.BatchPoolInfo(pool_id="pool"), **extra)


def task(task_id: str, command: str = "/bin/true", **extra: Any) -> m.BatchTaskCreateOptions:
    return m.BatchTaskCreateOptions(id=task_id, command_line=command, **extra)


def counts(client: Any, job_id: str) -> m.BatchTaskCounts:
    return client.get_job_task_counts(job_id).task_counts


def test_create_job_add_tasks_and_read_them_back(client: Any) -> None:
    client.create_job(
        job(
            "data-processing-job",
            priority=100,
            constraints=m.BatchJobConstraints(max_task_retry_count=3, max_wall_clock_time="PT24H"),
            uses_task_dependencies=True,
        )
    )
    created = client.get_job("data-processing-job")
    assert created.priority == 100
    assert created.constraints.max_task_retry_count == 3
    assert created.state == m.BatchJobState.ACTIVE
    client.create_task(
        "data-processing-job",
        task("task-001", "/bin/bash -c 'echo Hello from Azure Batch && echo 0123456789'"),
    )
    with pytest.raises(ResourceExistsError) as exists:
        client.create_task("data-processing-job", task("TASK-001"))
    assert exists.value.error.code == "TaskExists"
    result = client.create_tasks(
        "data-processing-job", [task(f"bulk-{i:04d}") for i in range(1000)]
    )
    assert len(result.result_values) == 1000
    assert {r.status for r in result.result_values} == {m.BatchTaskAddStatus.SUCCESS}
    wait_for(lambda: counts(client, "data-processing-job").succeeded == 1001)
    tally = client.get_job_task_counts("data-processing-job")
    assert tally.task_slot_counts.completed == 1001
    # stdout.txt, whole and a range of it (ocp-range answers 200 with the slice)
    whole = b"".join(client.download_task_file("data-processing-job", "task-001", "stdout.txt"))
    assert whole == b"Hello from Azure Batch\n0123456789\n"
    part = b"".join(
        client.download_task_file(
            "data-processing-job", "task-001", "stdout.txt", ocp_range="bytes=6-9"
        )
    )
    assert part == b"from"
    properties = client.get_task_file_properties("data-processing-job", "task-001", "stdout.txt")
    assert properties.content_length == len(whole)
    names = [f.name for f in client.list_task_files("data-processing-job", "task-001")]
    assert {"stdout.txt", "stderr.txt", "wd"} <= set(names)
    with pytest.raises(ResourceNotFoundError) as missing:
        client.download_task_file("data-processing-job", "task-001", "wd/none.txt")
    # (SDK 15 streams downloads and does not read an error's body: the status tells)
    assert missing.value.status_code == 404
    missing.value.response.close()  # the unread stream holds its connection


def test_filters_select_and_paging(client: Any) -> None:
    client.create_job(job("paged"))
    client.create_tasks("paged", [task(f"t-{i:03d}") for i in range(250)])
    client.create_task("paged", task("fails", "/bin/sh -c 'exit 3'"))
    wait_for(lambda: counts(client, "paged").completed == 251)
    pages = client.list_tasks("paged", max_results=40, select=["id", "state"]).by_page()
    sizes = [len(list(p)) for p in pages]
    assert sizes == [40] * 6 + [11]
    listed = [t.id for t in client.list_tasks("paged", max_results=100)]
    assert len(listed) == len(set(listed)) == 251
    failed = list(
        client.list_tasks(
            "paged",
            filter="executionInfo/result eq 'failure'",
            select=["id", "executionInfo"],
        )
    )
    assert [(t.id, t.execution_info.exit_code) for t in failed] == [("fails", 3)]
    assert failed[0].command_line is None  # $select left it out
    some = client.list_tasks(
        "paged", filter="state eq 'completed' and (startswith(id,'t-00') or id eq 't-100')"
    )
    assert sorted(t.id for t in some) == [f"t-00{i}" for i in range(10)] + ["t-100"]
    jobs = [j.id for j in client.list_jobs(filter="state eq 'active'")]
    assert jobs == ["paged"]
    with pytest.raises(HttpResponseError) as refused:
        list(client.list_tasks("paged", filter="commandLine eq 'x'"))
    assert refused.value.status_code == 400
    assert refused.value.error.code == "InvalidQueryParameterValue"
    with pytest.raises(HttpResponseError) as bad_syntax:
        list(client.list_tasks("paged", filter="state eq"))
    assert bad_syntax.value.error.code == "InvalidQueryParameterValue"


def test_dependencies_by_ids_and_ranges_added_in_any_order(client: Any) -> None:
    client.create_job(job("pipeline-job", uses_task_dependencies=True))
    depends = m.BatchTaskDependencies
    # The merge first: it waits for tasks 1..20, which come later, last one first.
    client.create_task(
        "pipeline-job",
        task(
            "merge-results",
            "/bin/sh -c 'ls ../.. > /dev/null'",
            depends_on=depends(task_id_ranges=[m.BatchTaskIdRange(start=1, end=20)]),
        ),
    )
    client.create_tasks(
        "pipeline-job",
        [
            task("generate-report", depends_on=depends(task_ids=["process-data"])),
            task("process-data", depends_on=depends(task_ids=["download-data"])),
            task("download-data"),
        ],
    )
    client.create_tasks("pipeline-job", [task(str(i)) for i in range(20, 0, -1)])
    wait_for(lambda: counts(client, "pipeline-job").succeeded == 24)
    merge = client.get_task("pipeline-job", "merge-results")
    parents = [client.get_task("pipeline-job", str(i)) for i in range(1, 21)]
    assert merge.execution_info.start_time >= max(p.execution_info.end_time for p in parents)
    report = client.get_task("pipeline-job", "generate-report")
    process = client.get_task("pipeline-job", "process-data")
    assert report.execution_info.start_time >= process.execution_info.end_time


def test_retries_wall_clock_and_reactivate(client: Any, tmp_path: Path) -> None:
    counter = tmp_path / "attempts"
    gate = tmp_path / "gate"
    client.create_job(job("flaky", constraints=m.BatchJobConstraints(max_task_retry_count=3)))
    # Fails on its first two attempts (a counter file), succeeds on the third.
    flaky = f"/bin/sh -c 'echo x >> {counter}; test $(wc -l < {counter}) -ge 3'"
    client.create_task("flaky", task("flaky-task", flaky))
    client.create_task(
        "flaky",
        task(
            "too-slow",
            "/bin/sleep 600",
            constraints=m.BatchTaskConstraints(max_wall_clock_time="PT1S", max_task_retry_count=0),
        ),
    )
    client.create_task(
        "flaky",
        task(
            "needs-gate",
            f"/bin/sh -c 'test -e {gate}'",
            constraints=m.BatchTaskConstraints(max_task_retry_count=0),
        ),
    )
    wait_for(lambda: counts(client, "flaky").completed == 3)
    done = client.get_task("flaky", "flaky-task")
    assert done.execution_info.result == m.BatchTaskExecutionResult.SUCCESS
    assert done.execution_info.retry_count == 2
    slow = client.get_task("flaky", "too-slow")
    assert slow.execution_info.result == m.BatchTaskExecutionResult.FAILURE
    assert slow.execution_info.failure_info.code == "TaskEnded"
    gated = client.get_task("flaky", "needs-gate")
    assert gated.execution_info.result == m.BatchTaskExecutionResult.FAILURE
    with pytest.raises(ResourceExistsError) as succeeded:
        client.reactivate_task("flaky", "flaky-task")
    assert succeeded.value.error.code == "TaskSucceeded"
    gate.write_text("open")
    client.reactivate_task("flaky", "needs-gate")
    wait_for(
        lambda: (
            client.get_task("flaky", "needs-gate").execution_info.result
            == m.BatchTaskExecutionResult.SUCCESS
        )
    )


def test_on_all_tasks_complete_terminate_and_delete(client: Any, tmp_path: Path) -> None:
    client.create_job(job("auto"))
    client.create_tasks("auto", [task(f"a{i}") for i in range(5)])
    client.update_job("auto", m.BatchJobUpdateOptions(all_tasks_complete_mode="terminatejob"))
    wait_for(lambda: client.get_job("auto").state == m.BatchJobState.COMPLETED)
    assert client.get_job("auto").execution_info.termination_reason == "AllTasksComplete"
    with pytest.raises(ResourceExistsError) as ended:
        client.create_task("auto", task("late"))
    assert ended.value.error.code == "JobCompleted"

    gate = tmp_path / "never"
    client.create_job(job("stopped"))
    client.create_task(
        "stopped", task("runs", f"/bin/sh -c 'while ! test -e {gate}; do sleep 0.05; done'")
    )
    wait_for(lambda: counts(client, "stopped").running == 1)
    from azure.batch.models._models import BatchJobTerminateOptions

    client.begin_terminate_job(
        "stopped",
        options=BatchJobTerminateOptions(termination_reason="mine"),
        polling_interval=0.05,
    ).result()
    stopped = client.get_job("stopped")
    assert stopped.state == m.BatchJobState.COMPLETED
    assert stopped.execution_info.termination_reason == "mine"
    assert client.get_task("stopped", "runs").state == m.BatchTaskState.COMPLETED

    client.begin_delete_job("stopped", polling_interval=0.05).result()
    with pytest.raises(ResourceNotFoundError) as gone:
        client.get_job("stopped")
    assert gone.value.error.code == "JobNotFound"


def test_a_job_waits_for_its_pool(client: Any) -> None:
    client.create_job(m.BatchJobCreateOptions(id="later", pool_info=m.BatchPoolInfo(pool_id="p2")))
    client.create_task("later", task("t"))
    assert counts(client, "later").active == 1
    # SDK 15.1.0's pool_exists raises on the 404 (its exception policy runs first)
    with pytest.raises(ResourceNotFoundError):
        client.pool_exists("p2")
    client.create_pool(
        m.BatchPoolCreateOptions(id="p2", vm_size="standard_d2s_v3", target_dedicated_nodes=1)
    )
    assert client.pool_exists("p2")
    wait_for(lambda: counts(client, "later").succeeded == 1)
    nodes = list(client.list_nodes("p2"))
    assert [n.id for n in nodes] == ["tvm-p2-1"]
    client.begin_resize_pool(
        "p2", m.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=0.05
    ).result()
    wait_for(lambda: len(list(client.list_nodes("p2"))) == 2)
    assert client.get_pool("p2").current_dedicated_nodes == 2
    files = [f.name for f in client.list_node_files("p2", "tvm-p2-1")]
    assert "shared" in files
    client.begin_delete_pool("p2", polling_interval=0.05).result()
    with pytest.raises(ResourceNotFoundError) as gone:
        client.get_pool("p2")
    assert gone.value.error.code == "PoolNotFound"


def test_resource_and_output_files_with_azurite(
    emulator: EmulatorHandle, client: Any, azurite: Azurite
) -> None:
    inputs = azurite.new_container()
    inputs.upload_blob("input.csv", b"a,b\n1,2\n")
    outputs = azurite.new_container()
    client.create_job(job("files"))
    client.create_task(
        "files",
        task(
            "process-001",
            "/bin/sh -c 'wc -l < input.csv > output.csv'",
            resource_files=[
                m.ResourceFile(
                    http_url=azurite.sas_url(inputs.container_name, "rl").replace(
                        "?", "/input.csv?", 1
                    ),
                    file_path="input.csv",
                )
            ],
            output_files=[
                m.OutputFile(
                    file_pattern="output.csv",
                    destination=m.OutputFileDestination(
                        container=m.OutputFileBlobContainerDestination(
                            container_url=azurite.sas_url(outputs.container_name, "rwl"),
                            path="results/output.csv",
                        )
                    ),
                    upload_options=m.OutputFileUploadConfiguration(
                        upload_condition=m.OutputFileUploadCondition.TASK_SUCCESS
                    ),
                )
            ],
        ),
    )
    wait_for(lambda: counts(client, "files").completed == 1)
    assert counts(client, "files").succeeded == 1
    uploaded = outputs.download_blob("results/output.csv").readall()
    assert uploaded.strip() == b"2"


def test_a_job_manager_adds_and_watches_tasks_through_the_sdk(
    emulator: EmulatorHandle, client: Any, tmp_path: Path
) -> None:
    script = tmp_path / "manager.py"
    script.write_text(
        "import os, time\n"
        "from azure.batch import BatchClient, models as m\n"
        "from azure.core.credentials import AzureNamedKeyCredential\n"
        "client = BatchClient(os.environ['AZ_BATCH_ACCOUNT_URL'], AzureNamedKeyCredential(\n"
        "    os.environ['BATCH_ACCOUNT_NAME'], os.environ['BATCH_ACCOUNT_KEY']))\n"
        "job = os.environ['AZ_BATCH_JOB_ID']\n"
        "client.create_tasks(job, [m.BatchTaskCreateOptions(id=f'w{i}', command_line='/bin/true')\n"
        "                          for i in range(10)])\n"
        "while client.get_job_task_counts(job).task_counts.succeeded < 10:\n"
        "    time.sleep(0.1)\n"
        "print('all', len(list(client.list_tasks(job))), 'tasks seen')\n"
    )
    manager = m.BatchJobManagerTask(
        id="manager",
        command_line=f"{sys.executable} {script}",
        environment_settings=[
            m.EnvironmentSetting(name="BATCH_ACCOUNT_NAME", value=emulator.account_name),
            m.EnvironmentSetting(name="BATCH_ACCOUNT_KEY", value=emulator.account_key),
        ],
        kill_job_on_completion=False,
        # Batch's default is exclusive use of the node: the pool has one, so share it
        run_exclusive=False,
    )
    client.create_job(job("managed", job_manager_task=manager))
    wait_for(lambda: client.get_task("managed", "manager").state == m.BatchTaskState.COMPLETED)
    errors = b"".join(client.download_task_file("managed", "manager", "stderr.txt"))
    assert errors == b""
    # (task counts may lag the task's own state a moment, as Batch's do)
    wait_for(lambda: counts(client, "managed").succeeded == 11)
    out = b"".join(client.download_task_file("managed", "manager", "stdout.txt"))
    assert out == b"all 11 tasks seen\n"
