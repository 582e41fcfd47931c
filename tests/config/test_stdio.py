"""`command:` servers in the config: exactly one of URL and argv, an environment allow-list with secrets."""

from __future__ import annotations

from pathlib import Path

from mcp_bastion.config import load_config

from .configs import edit, refusal, write

PLUGIN = ["/usr/bin/env", "true"]


def test_a_command_server_and_its_defaults(tmp_path: Path) -> None:
    data = edit(servers__0__upstream=..., servers__0__command=PLUGIN)
    server = load_config(write(tmp_path, data), environ={}).config.servers[0]
    assert server.command == tuple(PLUGIN)
    assert (server.upstream, server.env, server.cwd) == (None, {}, None)
    assert server.stdio.process == "per_subject"  # isolation by default
    assert server.stdio.max_line_bytes == 16 * 1_048_576


def test_exactly_one_of_upstream_and_command() -> None:
    both = refusal(edit(servers__0__command=PLUGIN))
    assert "exactly one of `upstream`" in both.message
    assert "servers[0].upstream" in both.message
    neither = refusal(edit(servers__0__upstream=...))
    assert "required key is missing: give `upstream` (a URL) or `command`" in neither.message


def test_env_and_cwd_belong_to_command_servers() -> None:
    assert "only used with `command`" in refusal(edit(servers__0__env={"A": "b"})).message
    assert "only used with `command`" in refusal(edit(servers__0__cwd="/srv/plugin")).message


def test_an_empty_argv_and_an_odd_variable_name_are_refused() -> None:
    assert "servers[0].command" in refusal(edit(servers__0__upstream=..., servers__0__command=[])).message
    odd = edit(servers__0__upstream=..., servers__0__command=PLUGIN, servers__0__env={"A=B": "x"})
    assert "not an environment variable name" in refusal(odd).message


def test_a_plugin_gets_its_identity_from_a_minted_token_only() -> None:
    data = edit(
        servers__0__upstream=...,
        servers__0__command=PLUGIN,
        servers__0__upstream_auth={"type": "static", "secret": {"env": "X"}},
    )
    assert "type must be 'minted'" in refusal(data).message


def test_env_secrets_are_read_at_load_time(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    env = {"PLAIN": "v", "FROM_ENV": {"env": "PLUGIN_TOKEN"}, "FROM_FILE": {"file": str(key_file)}}
    data = edit(servers__0__upstream=..., servers__0__command=PLUGIN, servers__0__env=env)
    loaded = load_config(write(tmp_path, data), environ={"PLUGIN_TOKEN": "t0k"})
    assert loaded.secret("servers[0].env.FROM_ENV") == "t0k"
    assert loaded.secret("servers[0].env.FROM_FILE") == "from-file"
    assert loaded.secret("servers[0].env.PLAIN") is None  # plain values are not secrets


def test_tls_settings_belong_to_url_servers() -> None:
    # A plug-in speaks over pipes: an upstream_tls beside `command` would be ignored silently.
    data = edit(servers__0__upstream=..., servers__0__command=PLUGIN, servers__0__upstream_tls={})
    refused = refusal(data)
    assert "only used with an https `upstream`" in refused.message
    assert "servers[0].upstream_tls" in refused.message
