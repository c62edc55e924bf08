"""What clients really send and how the emulator answers: az's bodies (integers as
strings, enums as typed, collections in reverse order), Shared Key variants, limits,
conditional requests and the headers of each answer."""

from __future__ import annotations

import json
from email.utils import formatdate
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from batchflow.emulator.server import EmulatorHandle
from tests.emulator.conftest import job_spec, raw, wait_for


def test_az_bodies_are_accepted_and_answered_in_batchs_form(emulator: EmulatorHandle) -> None:
    status, headers, body = raw(
        emulator,
        "POST",
        "/jobs?api-version=2024-02-01.19.0",
        {
            "priority": "100",
            "constraints": {"maxWallClockTime": "PT24H", "maxTaskRetryCount": "3"},
            "id": "data-processing-job",
            "poolInfo": {"poolId": "pool"},
            "onAllTasksComplete": "noAction",
            "usesTaskDependencies": True,
        },
    )
    assert (status, body) == (201, b"")
    assert headers["location"].endswith("/jobs/data-processing-job")
    assert headers["dataserviceid"] == headers["location"]
    assert headers["etag"].startswith('"0x') and headers["last-modified"].endswith("GMT")
    status, headers, body = raw(emulator, "GET", "/jobs/data-processing-job?api-version=x")
    job = json.loads(body)
    assert status == 200
    assert (job["priority"], job["constraints"]) == (
        100,
        {"maxWallClockTime": "P1D", "maxTaskRetryCount": 3},
    )
    assert job["onAllTasksComplete"] == "noaction"
    assert headers["etag"] == f'"{job["eTag"]}"'
    # az posts a JSON list in reverse order: dependents before their parents
    tasks = [
        {"id": "generate-report", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["p"]}},
        {"id": "p", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["d"]}},
        {
            "id": "d",
            "commandLine": "/bin/true",
            "constraints": {"maxTaskRetryCount": "2", "maxWallClockTime": "PT01H30M00S"},
            "outputFiles": [],
        },
    ]
    status, _, body = raw(
        emulator,
        "POST",
        "/jobs/data-processing-job/addtaskcollection?api-version=x",
        {"value": tasks},
    )
    results = json.loads(body)["value"]
    assert status == 200
    assert [(r["taskId"], r["status"]) for r in results] == [
        ("generate-report", "success"),
        ("p", "success"),
        ("d", "success"),
    ]
    status, _, body = raw(emulator, "GET", "/jobs/data-processing-job/tasks/d?api-version=x")
    assert json.loads(body)["constraints"]["maxWallClockTime"] == "PT1H30M"
    assert json.loads(body)["constraints"]["maxTaskRetryCount"] == 2
    # a retried collection: per-task TaskExists, lowercase statuses
    status, _, body = raw(
        emulator,
        "POST",
        "/jobs/data-processing-job/addtaskcollection?api-version=x",
        {"value": tasks[2:]},
    )
    (again,) = json.loads(body)["value"]
    assert (again["status"], again["error"]["code"]) == ("clienterror", "TaskExists")
    # az job stop sends {}; DELETE sends Content-Length: 0
    assert raw(emulator, "POST", "/jobs/data-processing-job/terminate?api-version=x", {})[0] == 202
    assert raw(emulator, "DELETE", "/jobs/data-processing-job?api-version=x")[0] == 202


def test_a_listed_task_is_what_batch_returns_for_it(emulator: EmulatorHandle) -> None:
    # Batch's own GET of a task added with only an id and a command line, in a job
    # with maxTaskRetryCount 5 (batch-semantics.md 3.1): these members and no others.
    batch_members = {
        "id", "url", "eTag", "creationTime", "lastModified", "state", "stateTransitionTime",
        "commandLine", "userIdentity", "constraints", "requiredSlots", "executionInfo",
    }  # fmt: skip
    spec = job_spec("listed", usesTaskDependencies=True, constraints={"maxTaskRetryCount": 5})
    raw(emulator, "POST", "/jobs?api-version=x", spec)
    tasks = [
        {"id": "waits", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["never"]}},
        {"id": "plain", "commandLine": "/bin/true"},
        {"id": "fails", "commandLine": "/bin/false", "constraints": {"maxTaskRetryCount": 1}},
    ]
    raw(emulator, "POST", "/jobs/listed/addtaskcollection?api-version=x", {"value": tasks})

    def listing() -> dict[str, Any]:
        status, _, body = raw(emulator, "GET", "/jobs/listed/tasks?api-version=x&maxresults=2")
        page = json.loads(body)
        found = page["value"]
        while "odata.nextLink" in page:
            status, _, body = raw(emulator, "GET", "/" + page["odata.nextLink"].split("/", 3)[3])
            page = json.loads(body)
            found += page["value"]
        assert status == 200
        return {t["id"]: t for t in found}

    def finished() -> dict[str, Any] | None:
        found = listing()
        ended = found["plain"]["state"] == found["fails"]["state"] == "completed"
        return found if ended else None

    done = wait_for(finished)
    waits = done["waits"]
    assert set(waits) - {"dependsOn"} == batch_members
    assert waits["constraints"] == {
        "maxWallClockTime": "P10675199DT2H48M5.4775807S",
        "retentionTime": "P7D",
        "maxTaskRetryCount": 5,
    }
    assert waits["executionInfo"] == {"retryCount": 0, "requeueCount": 0}
    assert waits["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    assert done["fails"]["executionInfo"]["retryCount"] == 1
    assert done["fails"]["constraints"]["maxTaskRetryCount"] == 1
    assert done["plain"]["nodeInfo"]["poolId"] == "pool"
    # each listed task is exactly what a GET of it returns
    for task_id, listed in done.items():
        _, _, body = raw(emulator, "GET", f"/jobs/listed/tasks/{task_id}?api-version=x")
        got = json.loads(body)
        del got["odata.metadata"]
        assert listed == got


def test_collection_limits(emulator: EmulatorHandle) -> None:
    raw(emulator, "POST", "/jobs?api-version=x", job_spec("limits"))
    too_many = {"value": [{"id": f"t{i}", "commandLine": "/bin/true"} for i in range(101)]}
    status, _, body = raw(
        emulator, "POST", "/jobs/limits/addtaskcollection?api-version=x", too_many
    )
    assert status == 400
    too_big = {"value": [{"id": "big", "commandLine": "/bin/echo " + "x" * 1_100_000}]}
    status, _, body = raw(emulator, "POST", "/jobs/limits/addtaskcollection?api-version=x", too_big)
    assert (status, json.loads(body)["code"]) == (413, "RequestBodyTooLarge")
    status, _, body = raw(
        emulator, "POST", "/jobs/limits/addtaskcollection?api-version=x", b"{nope"
    )
    assert (status, json.loads(body)["code"]) == (400, "InvalidRequestBody")


def test_sdk_halves_a_collection_that_is_too_large(client: Any) -> None:
    from azure.batch import models as m

    client.create_job(
        m.BatchJobCreateOptions(id="halves", pool_info=m.BatchPoolInfo(pool_id="pool"))
    )
    # 100 tasks of 15 kB: 1.5 MB in one request, so the SDK gets 413 and sends halves
    tasks = [
        m.BatchTaskCreateOptions(id=f"h{i}", command_line="/bin/true " + "y" * 15_000)
        for i in range(100)
    ]
    result = client.create_tasks("halves", tasks)
    assert len(result.result_values) == 100


def test_conditional_requests(emulator: EmulatorHandle) -> None:
    raw(emulator, "POST", "/jobs?api-version=x", job_spec("cond"))
    _, headers, _ = raw(emulator, "GET", "/jobs/cond?api-version=x")
    tag, modified = headers["etag"], headers["last-modified"]
    assert (
        raw(emulator, "GET", "/jobs/cond?api-version=x", headers={"If-None-Match": tag})[0] == 304
    )
    assert (
        raw(emulator, "GET", "/jobs/cond?api-version=x", headers={"If-Modified-Since": modified})[0]
        == 304
    )
    status, _, body = raw(
        emulator,
        "PATCH",
        "/jobs/cond?api-version=x",
        {"priority": 5},
        headers={"If-Match": '"0x1"'},
    )
    assert (status, json.loads(body)["code"]) == (412, "ConditionNotMet")
    status, after, _ = raw(
        emulator, "PATCH", "/jobs/cond?api-version=x", {"priority": "5"}, headers={"If-Match": tag}
    )
    assert status == 200 and after["etag"] != tag
    # the old tag no longer matches
    assert (
        raw(
            emulator,
            "PATCH",
            "/jobs/cond?api-version=x",
            {"priority": 6},
            headers={"If-Match": tag},
        )[0]
        == 412
    )


def test_request_and_client_request_ids(emulator: EmulatorHandle) -> None:
    status, headers, _ = raw(
        emulator, "GET", "/jobs?api-version=x", headers={"client-request-id": "abc-123"}
    )
    assert status == 200
    assert headers["client-request-id"] == "abc-123"
    assert len(headers["request-id"]) == 36
    status, headers, body = raw(emulator, "GET", "/jobs/none?api-version=x")
    error = json.loads(body)
    assert (status, error["code"]) == (404, "JobNotFound")
    assert error["message"]["lang"] == "en-US"
    assert f"RequestId:{headers['request-id']}" in error["message"]["value"]


def test_a_wrong_key_is_refused_with_batchs_error(emulator: EmulatorHandle) -> None:
    other_key = "b3RoZXIta2V5LW90aGVyLWtleS1vdGhlci1rZXktb3RoZXIta2V5LW90aGVyLWtleQ=="
    wrong = BatchClient(
        emulator.endpoint, AzureNamedKeyCredential(emulator.account_name, other_key)
    )
    with wrong, pytest.raises(HttpResponseError) as refused:
        list(wrong.list_jobs())
    assert refused.value.status_code == 403
    assert refused.value.error.code == "AuthenticationFailed"
    assert other_key not in str(refused.value) and emulator.account_key not in str(refused.value)
    stranger = BatchClient(
        emulator.endpoint, AzureNamedKeyCredential("stranger", emulator.account_key)
    )
    with stranger, pytest.raises(HttpResponseError) as unknown:
        list(stranger.list_jobs())
    assert unknown.value.error.code == "AuthenticationFailed"
    status, _, body = raw(emulator, "GET", "/jobs?api-version=x", key=other_key)
    error = json.loads(body)
    assert status == 403
    detail = dict((v["key"], v["value"]) for v in error["values"])["AuthenticationErrorDetail"]
    assert "string to sign" in detail and f"/{emulator.account_name}/jobs" in detail


def test_unsigned_and_stale_requests_are_refused(emulator: EmulatorHandle) -> None:
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(emulator.endpoint)
    connection = http.client.HTTPConnection(url.hostname, url.port)
    connection.request("GET", "/jobs?api-version=x")
    response = connection.getresponse()
    assert (response.status, json.loads(response.read())["code"]) == (403, "AuthenticationFailed")
    connection.close()
    stale = formatdate(0, usegmt=True)
    status, _, body = raw(emulator, "GET", "/jobs?api-version=x", headers={"ocp-date": stale})
    assert status == 403 and "15 minutes" in json.loads(body)["values"][0]["value"]


def test_msrest_signatures_with_the_decoded_path_are_accepted(
    client: Any, emulator: EmulatorHandle
) -> None:
    from azure.batch import models as m

    client.create_job(m.BatchJobCreateOptions(id="old", pool_info=m.BatchPoolInfo(pool_id="pool")))
    client.create_task(
        "old", m.BatchTaskCreateOptions(id="t", command_line="/bin/sh -c 'echo hi > out.txt'")
    )
    wait_for(lambda: client.get_job_task_counts("old").task_counts.completed == 1)
    path = "/jobs/old/tasks/t/files/wd%2Fout.txt"
    for signed in (path, path.replace("%2F", "/")):  # SDK 15 / az, then msrest 14
        status, headers, body = raw(
            emulator, "GET", path + "?api-version=2024-02-01.19.0&timeout=30", sign_path=signed
        )
        assert (status, body) == (200, b"hi\n")
        assert headers["ocp-batch-file-isdirectory"] == "false"
    status, headers, body = raw(emulator, "HEAD", path + "?api-version=x")
    assert (status, headers["content-length"], body) == (200, "3", b"")


def test_filter_errors_name_what_was_refused(emulator: EmulatorHandle) -> None:
    raw(emulator, "POST", "/jobs?api-version=x", job_spec("f"))
    for text, reason in [
        ("displayName eq 'x'", "displayName"),
        ("state eq 'active' and", "expected a property"),
        ("substringof('a', id)", "substringof"),
        ("state gt 'active'", "state takes eq, ne"),
    ]:
        from urllib.parse import quote

        status, _, body = raw(emulator, "GET", f"/jobs/f/tasks?api-version=x&$filter={quote(text)}")
        error = json.loads(body)
        assert (status, error["code"]) == (400, "InvalidQueryParameterValue")
        details = {v["key"]: v["value"] for v in error["values"]}
        assert details["QueryParameterName"] == "$filter"
        assert reason in details["Reason"]
    status, _, body = raw(emulator, "GET", "/jobs/f/tasks?api-version=x&maxresults=5000")
    assert (status, json.loads(body)["code"]) == (400, "OutOfRangeQueryParameterValue")


def test_the_cli_prints_the_task_the_emulator_answers(emulator: EmulatorHandle) -> None:
    """One serializer: `batchflow tasks --output json` on the emulator's state directory
    prints each task as the emulator's GET answers it (less the url, which only the HTTP
    edge knows)."""
    from typer.testing import CliRunner

    from batchflow.cli.main import app

    raw(emulator, "POST", "/jobs?api-version=x", job_spec("shared", usesTaskDependencies=True))
    tasks = [
        {"id": "waits", "commandLine": "/bin/true", "dependsOn": {"taskIds": ["never"]}},
        {"id": "fails", "commandLine": "/bin/false", "constraints": {"maxTaskRetryCount": 1}},
        {
            "id": "ok",
            "commandLine": "/bin/true",
            "environmentSettings": [{"name": "A", "value": "1"}],
        },
    ]
    raw(emulator, "POST", "/jobs/shared/addtaskcollection?api-version=x", {"value": tasks})

    def printed() -> list[dict[str, Any]] | None:
        result = CliRunner().invoke(
            app,
            ["tasks", "shared", "--output", "json", "--state-dir", str(emulator.state_dir)],
        )
        assert result.exit_code == 0, result.stderr
        found: list[dict[str, Any]] = json.loads(result.stdout)
        done = sum(t["state"] == "completed" for t in found) == 2
        return found if done else None

    for shown in wait_for(printed):
        _, _, body = raw(emulator, "GET", f"/jobs/shared/tasks/{shown['id']}?api-version=x")
        answered = json.loads(body)
        del answered["odata.metadata"], answered["url"]
        assert shown == answered
