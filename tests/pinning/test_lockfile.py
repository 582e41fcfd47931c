"""The lockfile: written for review, read back exactly, and refused when it was edited by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mcp_bastion.errors import ConfigError
from mcp_bastion.pinning.lockfile import read_lockfile, render_lockfile, write_lockfile
from mcp_bastion.pinning.pins import sighting_of
from mcp_bastion.policy.decide import ToolAnnotations

SEND = {"name": "send_email", "description": "Send.", "annotations": {"readOnlyHint": False}}
READ = {"name": "read", "annotations": {"readOnlyHint": True, "destructiveHint": False}}


def write(tmp_path: Path, servers: dict[str, list[dict[str, Any]]], name: str = "bastion.lock.json") -> str:
    path = str(tmp_path / name)
    write_lockfile(path, {s: {t["name"]: sighting_of(t) for t in tools} for s, tools in servers.items()})
    return path


def edit(path: str, change: Any) -> None:
    doc = json.loads(Path(path).read_text())
    change(doc)
    Path(path).write_text(json.dumps(doc))


def test_written_pins_read_back_with_digests_and_annotations(tmp_path: Path) -> None:
    path = write(tmp_path, {"mail": [SEND, READ]})
    pins = read_lockfile(path)["mail"]
    assert pins["send_email"].digest == sighting_of(SEND).digest
    assert pins["send_email"].definition == SEND
    assert pins["read"].annotations == ToolAnnotations(True, False)
    assert list(tmp_path.iterdir()) == [tmp_path / "bastion.lock.json"]  # no temporary left behind


def test_writing_one_server_keeps_the_others(tmp_path: Path) -> None:
    path = write(tmp_path, {"mail": [SEND], "db": [READ]})
    write(tmp_path, {"mail": [READ]})
    pins = read_lockfile(path)
    assert set(pins["mail"]) == {"read"}
    assert set(pins["db"]) == {"read"}


def test_the_text_is_stable_and_sorted_for_review(tmp_path: Path) -> None:
    one = render_lockfile({"mail": {"send_email": sighting_of(SEND), "read": sighting_of(READ)}})
    two = render_lockfile({"mail": {"read": sighting_of(READ), "send_email": sighting_of(SEND)}})
    assert one == two
    assert one.endswith("}\n")
    assert one.index('"read"') < one.index('"send_email"')


def test_invisible_characters_are_escaped_in_the_file_and_read_back_unchanged(tmp_path: Path) -> None:
    # Trojan-source style: a bidirectional override and a tag character hide text in a review.
    hostile = {"name": "t", "description": "ok\u202e txet neddih\U000e0041\u200b\x7f end"}
    path = write(tmp_path, {"mail": [hostile]})
    text = Path(path).read_text(encoding="utf-8")
    assert "\u202e" not in text
    assert "\U000e0041" not in text
    assert "\u200b" not in text
    assert "\x7f" not in text
    assert "\\u202e" in text
    assert "\\udb40\\udc41" in text
    assert read_lockfile(path)["mail"]["t"].definition == hostile


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (
            lambda d: d["servers"]["mail"]["tools"]["send_email"]["definition"].update(description="Other."),
            "servers.mail.tools.send_email.digest",
        ),
        (
            lambda d: d["servers"]["mail"]["tools"]["send_email"].update(digest=5),
            "servers.mail.tools.send_email.digest",
        ),
        (
            lambda d: d["servers"]["mail"]["tools"]["send_email"]["definition"].update(name="x"),
            "servers.mail.tools.send_email.definition.name",
        ),
        (
            lambda d: d["servers"]["mail"]["tools"]["send_email"]["definition"].update(_meta={}),
            "servers.mail.tools.send_email.definition._meta",
        ),
        (lambda d: d["servers"]["mail"].update(tools=[]), "servers.mail.tools"),
        (lambda d: d["servers"].update(mail=1), "servers.mail"),
        (lambda d: d.update(version=2), "version"),
    ],
)
def test_a_hand_edited_lockfile_is_refused_naming_the_key(tmp_path: Path, change: Any, where: str) -> None:
    path = write(tmp_path, {"mail": [SEND]})
    edit(path, change)
    with pytest.raises(ConfigError) as caught:
        read_lockfile(path)
    assert caught.value.source == path
    assert caught.value.path == where


def test_a_tool_written_twice_is_refused(tmp_path: Path) -> None:
    # json keeps the last of two equal names: the entry a reviewer read first would lose.
    path = write(tmp_path, {"mail": [SEND]})
    text = Path(path).read_text()
    first = '"send_email": {"digest": "sha256:0", "definition": {"name": "send_email"}},'
    Path(path).write_text(text.replace('"tools": {', '"tools": {' + first, 1))
    with pytest.raises(ConfigError, match="'send_email' appears twice"):
        read_lockfile(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe", "not UTF-8"),
        (b"{", "not valid JSON"),
        (b"[]", "not an mcp-bastion lockfile"),
        (b'{"lockfile": "something else"}', "not an mcp-bastion lockfile"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|not valid JSON"),
    ],
)
def test_what_is_not_a_lockfile_is_refused(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message):
        read_lockfile(str(path))


def test_an_unwritable_place_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot write the lockfile"):
        write(tmp_path / "missing-folder", {"mail": [SEND]})
