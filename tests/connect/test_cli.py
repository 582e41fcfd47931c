"""``mcp-bastion connect``'s command line: the help a user reads, and mistakes named before anything runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from mcp_bastion.cli import main
from mcp_bastion.connect._cli import store_choice
from mcp_bastion.connect.tokens import default_store_path


def test_help_shows_the_client_configuration_and_every_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["connect", "--help"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert '{"command": "mcp-bastion", "args": ["connect", ' in out
    for option in (
        "--headless",
        "--client-id",
        "--client-secret-file",
        "--scope",
        "--token-store",
        "--token-file",
    ):
        assert option in out
    assert "--client-metadata-url" in out


def test_a_secret_file_without_a_client_id_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    status = main(["connect", "--client-secret-file", str(secret), "https://gw.example.com/mcp"])
    err = capsys.readouterr().err
    assert status == 1
    assert "--client-secret-file needs --client-id" in err
    assert "s3cret" not in err


def test_an_empty_secret_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret = tmp_path / "secret"
    secret.write_text("\n")
    status = main(
        ["connect", "--client-id", "c", "--client-secret-file", str(secret), "https://gw.example.com/mcp"]
    )
    assert status == 1
    assert "is empty" in capsys.readouterr().err


def test_token_store_takes_a_mode_and_still_a_path() -> None:
    assert store_choice("auto", None) == ("auto", default_store_path())
    assert store_choice("keyring", "/home/u/t.json") == ("keyring", Path("/home/u/t.json"))
    assert store_choice("file", "/home/u/t.json") == ("file", Path("/home/u/t.json"))
    # `--token-store PATH` from before the keyring store keeps meaning that file.
    assert store_choice("/home/u/tokens.json", None) == ("file", Path("/home/u/tokens.json"))
