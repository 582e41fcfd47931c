"""Loading policy files: every failure is a ConfigError naming the key, the file and the line;
what loads is named and knows which context attributes it reads."""

from __future__ import annotations

import json
from pathlib import Path

import cedarpy
import pytest

from mcp_bastion.cedar import read_policies
from mcp_bastion.cedar.policies import context_reads, split_policies
from mcp_bastion.config import parse_config
from mcp_bastion.errors import ConfigError

from .build import AFTER_HOURS, BASELINE, DESTRUCTIVE, PATH_PREFIX, config_data


def _load(tmp_path: Path, *texts: str, **extra: object):  # type: ignore[no-untyped-def]
    return read_policies(parse_config(config_data(tmp_path, *texts, **extra)), tmp_path, "bastion.yaml")


def _refusal(tmp_path: Path, *texts: str) -> str:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, *texts)
    return caught.value.message


def test_policies_are_named_by_id_annotation_or_file_and_position(tmp_path: Path) -> None:
    loaded = _load(
        tmp_path,
        BASELINE,
        "permit (principal, action, resource);\n\n// x\nforbid (principal, action, resource)\n  when { false };",
    )
    sources = loaded.servers["files"].sources
    assert [s.id for s in sources] == ["after-scopes", f"{tmp_path}/p1.cedar#1", f"{tmp_path}/p1.cedar#2"]
    assert [(s.effect, s.line) for s in sources] == [("permit", 3), ("permit", 1), ("forbid", 4)]
    assert sources[2].text.startswith("forbid (principal, action, resource)")


def test_the_examples_read_what_they_use_of_the_context(tmp_path: Path) -> None:
    assert _load(tmp_path, BASELINE, DESTRUCTIVE).servers["files"].context_reads == frozenset()
    loaded = _load(tmp_path, BASELINE, PATH_PREFIX, AFTER_HOURS)
    assert loaded.servers["files"].context_reads == {"arguments", "time"}


@pytest.mark.parametrize(
    ("text", "reads"),
    [
        ('permit (principal, action, resource) when { context.now > datetime("2026-01-01") };', {"now"}),
        ("permit (principal, action, resource) when { context has time.hour };", {"time"}),
        (
            "permit (principal, action, resource) when { context == {} };",
            {"time", "now", "arguments", "method"},
        ),
        ("permit (principal, action, resource) when { principal.groups.isEmpty() };", set()),
    ],
)
def test_context_reads_finds_every_use_and_takes_all_when_context_is_used_whole(
    text: str, reads: set[str]
) -> None:
    ests = json.loads(cedarpy.policies_to_json_str(text))["staticPolicies"].values()
    assert context_reads(ests) == reads


def test_split_policies_ignores_semicolons_in_strings_and_comments() -> None:
    text = '// a; comment\n@id("x;y")\npermit (principal, action, resource)\n  when { "a;\\"b" == "a;\\"b" };\n\nforbid (principal, action, resource);'
    assert [line for line, _ in split_policies(text)] == [2, 6]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A parse error: the line of the policy that fails, found by parsing them one by one.
        (
            "permit (principal, action, resource);\n\nforbid (principal, action, resource)\n  when { x.contains(1 };",
            "p0.cedar, line 3: unexpected token",
        ),
        # The last policy lacks its `;`.
        (
            "permit (principal, action, resource);\nforbid (principal, action, resource)",
            "p0.cedar, line 2: unexpected end of input",
        ),
        # The validator: an attribute that does not exist, with the policy's line.
        (
            "permit (principal, action, resource);\n// comment\nforbid (principal, action, resource) when { principal.grups.isEmpty() };",
            "p0.cedar, line 3: attribute `grups` on entity type `User` not found",
        ),
        ("permit (principal == ?principal, action, resource);", "templates"),
        ("forbid (principal, action, resource);", "no permit policy applies to server 'files'"),
        (
            '@id("a") permit (principal, action, resource);\n@id("a") forbid (principal, action, resource) when { false };',
            "policy id 'a' is used twice",
        ),
    ],
)
def test_each_problem_is_named_with_its_file_and_line(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in _refusal(tmp_path, text)


def test_a_file_that_is_missing_not_utf8_or_too_large_is_refused(tmp_path: Path) -> None:
    config = parse_config(
        {
            "public_base_url": "https://gw.example",
            "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
            "servers": [{"name": "a", "upstream": "http://127.0.0.1:9/mcp", "policy_files": ["nope.cedar"]}],
        }
    )
    with pytest.raises(ConfigError) as caught:
        read_policies(config, tmp_path, "bastion.yaml")
    assert caught.value.path == "servers[0].policy_files[0]"
    assert "cannot read policy file" in caught.value.message
    (tmp_path / "latin.cedar").write_bytes(b"// \xe9\npermit (principal, action, resource);")
    (tmp_path / "big.cedar").write_bytes(b"//" + b"x" * 1_048_576)
    for name, complaint in (("latin.cedar", "not UTF-8"), ("big.cedar", "larger than")):
        bad = config.model_copy(
            update={"servers": (config.servers[0].model_copy(update={"policy_files": (name,)}),)}
        )
        with pytest.raises(ConfigError, match=complaint):
            read_policies(bad, tmp_path, "bastion.yaml")


def test_shared_files_apply_to_every_server_and_server_files_to_their_own(tmp_path: Path) -> None:
    (tmp_path / "own.cedar").write_text('@id("own") forbid (principal, action, resource) when { false };')
    data = config_data(tmp_path, BASELINE)
    data["servers"].append(
        {"name": "other", "upstream": "http://127.0.0.1:9/mcp", "policy_files": ["own.cedar"]}
    )
    loaded = read_policies(parse_config(data), tmp_path, "bastion.yaml")
    assert [s.id for s in loaded.servers["files"].sources] == ["after-scopes"]
    assert [s.id for s in loaded.servers["other"].sources] == ["after-scopes", "own"]


def test_a_config_without_policies_needs_no_cedar(tmp_path: Path) -> None:
    data = config_data(tmp_path)
    del data["policy"]
    assert read_policies(parse_config(data), tmp_path).servers == {}
