"""Secrets are sealed in the state file and come back unchanged for the engine."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from batchflow.backends.local.sealing import Sealer
from batchflow.backends.local.store import Store
from batchflow.exceptions import StateError
from batchflow.redact import redact

SAS = "https://acct.blob.core.windows.net/in/a.txt?sv=2024-05-04&sp=r&sig=AbC%2Bd%2Fe%3D"
CONN = "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k3y+/==;EndpointSuffix=x"


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        (json.dumps({"httpUrl": SAS, "filePath": "a.txt"}), "AbC%2Bd%2Fe%3D"),
        (json.dumps({"name": "CONN", "value": CONN}), "k3y+/=="),
        ("curl -o a 'https://x/y?sig=plainsig&se=1'", "plainsig"),
    ],
)
def test_a_secret_is_sealed_and_unsealed(tmp_path: Path, text: str, secret: str) -> None:
    sealer = Sealer(tmp_path / "secret.key")
    sealed = sealer.seal(text)
    assert secret not in sealed
    assert "sealed:" in sealed
    assert sealer.unseal(sealed) == text
    # Another process with the same key file reads it back.
    assert Sealer(tmp_path / "secret.key").unseal(sealed) == text


def test_sealed_json_stays_json(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "secret.key")
    sealed = sealer.seal(json.dumps({"resourceFiles": [{"httpUrl": SAS, "filePath": "a"}]}))
    assert json.loads(sealed)["resourceFiles"][0]["filePath"] == "a"


def test_each_sealing_differs_and_text_without_secrets_is_untouched(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "secret.key")
    assert sealer.seal(SAS) != sealer.seal(SAS)
    assert sealer.seal("/bin/echo hello") == "/bin/echo hello"
    assert sealer.seal(sealer.seal(SAS)).count("sealed:") == 1  # never sealed twice


def test_text_that_only_looks_sealed_is_left_alone(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "secret.key")
    assert sealer.unseal("echo ?sig=sealed:notbase64!") == "echo ?sig=sealed:notbase64!"
    assert sealer.unseal("echo sealed:abc") == "echo sealed:abc"


def test_the_key_file_is_private(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "state" / "secret.key")
    sealer.seal(SAS)
    mode = stat.S_IMODE(os.stat(tmp_path / "state" / "secret.key").st_mode)
    assert mode == 0o600
    assert len((tmp_path / "state" / "secret.key").read_bytes()) == 32


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "sealing"


def old_sealer(tmp_path: Path) -> Sealer:
    """A sealer with the key of the fixture sealed by batchflow's HMAC-keystream cipher."""
    key = tmp_path / "secret.key"
    key.write_bytes((FIXTURES / "old-secret.key").read_bytes())
    key.chmod(0o600)
    return Sealer(key)


def test_a_value_sealed_the_old_way_is_unsealed(tmp_path: Path) -> None:
    fixture = json.loads((FIXTURES / "old-sealed.json").read_text())
    assert "sealed:" in fixture["sealed"] and "sealed:v2." not in fixture["sealed"]
    assert old_sealer(tmp_path).unseal(fixture["sealed"]) == fixture["clear"]


def test_resealing_an_old_value_migrates_it_to_the_authenticated_form(tmp_path: Path) -> None:
    fixture = json.loads((FIXTURES / "old-sealed.json").read_text())
    sealer = old_sealer(tmp_path)
    migrated = sealer.seal(sealer.unseal(fixture["sealed"]))
    # Three secrets, each now in the AES-GCM form and none in the old one.
    assert migrated.count("sealed:v2.") == 3
    assert migrated.count("sealed:") == 3
    assert "k3y+/==" not in migrated and "plainsig" not in migrated
    assert Sealer(tmp_path / "secret.key").unseal(migrated) == fixture["clear"]
    # Migrating an already migrated value is harmless.
    assert sealer.unseal(sealer.seal(sealer.unseal(migrated))) == fixture["clear"]


def test_an_altered_sealed_value_is_refused(tmp_path: Path) -> None:
    sealer = Sealer(tmp_path / "secret.key")
    sealed = sealer.seal(SAS)
    head, token = sealed.split("sealed:v2.")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(StateError, match="cannot be opened"):
        sealer.unseal(head + "sealed:v2." + flipped)


def test_a_value_sealed_with_another_key_is_refused(tmp_path: Path) -> None:
    sealed = Sealer(tmp_path / "a.key").seal(SAS)
    with pytest.raises(StateError, match=r"b\.key") as info:
        Sealer(tmp_path / "b.key").unseal(sealed)
    assert "AbC" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        # user-delegation SAS parameters that redact hides are sealed too
        ("https://a/c?sv=1&skoid=0a1b-2c&sktid=9f8e&sk=kEy&sig=s1g", "0a1b-2c"),
        # an Authorization header in a command line
        ("curl -H 'Authorization: Bearer eyJ0eX.AiOi-J9' https://x", "eyJ0eX.AiOi-J9"),
        ("curl -H 'Authorization: SharedKey acct:c2lnbmF0dXJl' https://x", "c2lnbmF0dXJl"),
        # a password in a connection string
        ("Server=x;User Id=u;Password=hunter2;", "hunter2"),
    ],
)
def test_what_redact_hides_is_what_is_sealed(tmp_path: Path, text: str, secret: str) -> None:
    sealer = Sealer(tmp_path / "secret.key")
    sealed = sealer.seal(text)
    assert secret not in sealed
    assert secret not in redact(text)
    assert sealer.unseal(sealed) == text


def test_an_old_state_directory_opens_and_migrates(tmp_path: Path) -> None:
    """A state directory written by batchflow with the old cipher (job 'old-secrets')."""
    root = tmp_path / "state"
    root.mkdir()
    for name in ("state.db", "secret.key"):
        (root / name).write_bytes((FIXTURES / "old-state" / name).read_bytes())
    (root / "secret.key").chmod(0o600)
    raw = sqlite3.connect(root / "state.db")
    (old_def,) = raw.execute("SELECT def FROM tasks").fetchone()
    raw.close()
    assert "AccountKey=sealed:" in old_def and "k3y+/==" not in old_def

    store = Store(root, create=False)
    try:
        (clear,) = store.one("SELECT def FROM tasks")
        assert "AccountKey=k3y+/==;" in clear
        # What a migration does: every sealed value re-sealed in the current form.
        with store.write() as db:
            db.execute("UPDATE tasks SET def = ?", (store.seal(clear),))
    finally:
        store.close()
    raw = sqlite3.connect(root / "state.db")
    (new_def,) = raw.execute("SELECT def FROM tasks").fetchone()
    raw.close()
    assert "AccountKey=sealed:v2." in new_def and "k3y+/==" not in new_def
    assert Sealer(root / "secret.key").unseal(new_def) == clear
