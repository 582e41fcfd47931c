"""`wrap`'s config: the plug-in as one more server, with only the environment it is given."""

from __future__ import annotations

from mcp_bastion.config import LoadedConfig, parse_config
from mcp_bastion.stdio.wrap import WrapOptions, wrap_config, wrapped_server

ENVIRON = {"PATH": "/usr/bin", "HOME": "/home/a", "AWS_SECRET_ACCESS_KEY": "s3cr3t", "API_TOKEN": "t"}


def test_the_plugin_gets_the_default_variables_and_those_named_only() -> None:
    options = WrapOptions(("server",), env=("API_TOKEN", "ABSENT"))
    server, secrets = wrapped_server(options, 2, ENVIRON)
    assert server["env"] == {
        "PATH": {"env": "PATH"},
        "HOME": {"env": "HOME"},
        "API_TOKEN": {"env": "API_TOKEN"},
    }
    assert secrets == {
        "servers[2].env.PATH": "/usr/bin",
        "servers[2].env.HOME": "/home/a",
        "servers[2].env.API_TOKEN": "t",
    }


def test_with_a_serve_config_the_plugin_is_one_more_server_trusting_its_idps() -> None:
    config = parse_config(
        {
            "public_base_url": "https://gw.example",
            "identity_providers": [{"name": "corp", "issuer": "https://idp.example"}],
            "servers": [{"name": "api", "upstream": "https://api.example/mcp"}],
        }
    )
    loaded = wrap_config(
        LoadedConfig(config, {"sessions.key": "k"}), WrapOptions(("srv", "--flag"), name="tools"), ENVIRON
    )
    api, tools = loaded.config.servers
    assert (api.name, tools.name, tools.command) == ("api", "tools", ("srv", "--flag"))
    assert tools.upstream is None
    assert loaded.config.identity_providers == config.identity_providers
    assert loaded.secrets["sessions.key"] == "k"
    assert loaded.secrets["servers[1].env.PATH"] == "/usr/bin"
