"""Secrets are sealed in the state file and come back unchanged for the engine."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from batchflow.backends.local.sealing import Sealer

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
