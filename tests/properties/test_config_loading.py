"""Properties of config loading: any data, any file bytes, give a validated config or a ConfigError.

A config file is operator input, not attacker input, but it is parsed from bytes and a bad one
must fail with a message naming the file and the key (never a traceback), within bounded time.
"""

from __future__ import annotations

import copy
import datetime
import tempfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import example, given
from hypothesis import strategies as st

from mcp_bastion.config import BastionConfig, LoadedConfig, load_config, parse_config
from mcp_bastion.config.load import MAX_CONFIG_BYTES
from mcp_bastion.errors import ConfigError

from .strategies import budget, hostile_text, json_scalars, outcome

VALID: dict[str, Any] = {
    "public_base_url": "https://gw.example",
    "identity_providers": [
        {"name": "corp", "issuer": "https://idp.example", "leeway_seconds": 30, "algorithms": ["ES256"]}
    ],
    "servers": [
        {
            "name": "demo",
            "upstream": "http://127.0.0.1:9001/mcp",
            "upstream_auth": {"type": "minted", "ttl_seconds": 60},
            "tools": {"drop": {"scopes": ["admin"]}},
        }
    ],
    "limits": {"max_body_bytes": 1_048_576, "max_json_depth": 64},
    "sessions": {"ttl_seconds": 3600},
    "audit": {"sink": "none"},
}

# Everything YAML's safe loader can produce, not only what JSON can: dates, bytes, floats as keys.
yaml_scalars = st.one_of(
    json_scalars,
    st.dates(),
    st.datetimes(),
    st.binary(max_size=10),
    st.floats(),
)
yaml_data = st.recursive(
    yaml_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.one_of(hostile_text, yaml_scalars), children, max_size=4)
    ),
    max_leaves=15,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*prefix, i))
    return found


@st.composite
def mutated_configs(draw: st.DrawFn) -> Any:
    """The valid config with one to three nodes replaced by anything, or deleted."""
    data = copy.deepcopy(VALID)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(data)))
        if not path:
            return draw(yaml_data)
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[path[-1]]
        else:
            parent[path[-1]] = draw(st.one_of(yaml_data, st.sampled_from(["", "http://x", "-1", "none"])))
    return data


# Pydantic's own words, which mean nothing to someone editing YAML (issue 9: "valid tuple").
PYDANTIC_JARGON = ("Input should", "tuple", "dictionary or instance", "SecretRef", "Config", "Value error")


def _check(result: BastionConfig | ConfigError, source: str, data: Any = None) -> None:
    if isinstance(result, ConfigError):
        assert result.message.startswith(source)  # names the file...
        assert result.message.strip() != source  # ...and says what is wrong...
        for jargon in PYDANTIC_JARGON:  # ...in the file's own words
            # A key the file itself wrote (`Config: ~`) is named back to it: its word, not jargon.
            assert jargon not in result.message or jargon in repr(data)
        return
    assert isinstance(result, BastionConfig)
    assert result.servers
    assert all(p.leeway_seconds <= 300 for p in result.identity_providers)  # the cap always holds


@given(data=st.one_of(yaml_data, mutated_configs()))
@example(data=VALID)
@budget(400, deadline_ms=2000)
def test_parse_config_validates_or_explains(data: Any) -> None:
    _check(outcome(ConfigError, parse_config, data, source="bastion.yaml"), "bastion.yaml", data)


@given(data=mutated_configs())
@budget(150, deadline_ms=2000)
def test_a_valid_config_round_trips_through_a_yaml_file(data: Any) -> None:
    parsed = outcome(ConfigError, parse_config, data)
    if isinstance(parsed, ConfigError):
        return
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bastion.yaml"
        path.write_text(yaml.safe_dump(data))
        loaded = load_config(path, environ={}, read_secrets=False)
    assert loaded.config == parsed


# Bytes that look like YAML: keys, indentation, flow collections, tags, anchors, odd scalars.
_YAML_PIECES = [
    "public_base_url: https://gw.example\n",
    "servers:\n",
    "  - name: demo\n",
    "    upstream: http://127.0.0.1:1/mcp\n",
    "identity_providers: []\n",
    "a: ",
    "- ",
    "  ",
    "\n",
    "[",
    "]",
    "{",
    "}",
    ": ",
    ", ",
    "&a ",
    "*a ",
    "!!binary ",
    "!!timestamp ",
    "!!python/object:os.system ",
    "!!float ",
    "? ",
    "'",
    '"',
    "\\",
    "#",
    "%YAML 1.1\n",
    "---\n",
    "...\n",
    "2020-02-30",
    "0x" + "f" * 20,
    "1" * 5000,
    "1e999",
    ".nan",
    "~",
    "\t",
    "\x00",
    "\ufeff",
]
yaml_texts = st.lists(st.sampled_from(_YAML_PIECES), max_size=30).map("".join)


@given(
    content=st.one_of(
        yaml_texts.map(str.encode),
        st.binary(max_size=200),
        yaml_texts.map(lambda t: t.encode("utf-16")),
    )
)
@budget(400, deadline_ms=3000)
def test_load_config_loads_or_explains_any_file(content: bytes) -> None:
    _load_or_explain(content)


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"[" * 1000, id="deeper-than-the-composer-recursion"),
        pytest.param(b"a: " + b"1" * 5000, id="past-the-int-digit-limit"),
        pytest.param(b"a: 2020-02-30", id="impossible-date"),
        pytest.param(b"a: !!timestamp 2020-13-45", id="impossible-timestamp"),
        pytest.param(b'a: !!float ""', id="empty-float-IndexError"),
        pytest.param(b'a: !!bool ""', id="empty-bool-KeyError"),
        pytest.param(b"a: !!timestamp x", id="bad-timestamp-AttributeError"),
    ],
)
def test_yaml_that_pyyaml_fails_on_is_explained(content: bytes) -> None:
    # Outside hypothesis on purpose: it raises the recursion limit, which makes the nesting
    # case slow (PyYAML's scanner is quadratic in nesting depth) without changing the answer.
    assert isinstance(_load_or_explain(content), ConfigError)


def _load_or_explain(content: bytes) -> LoadedConfig | ConfigError:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bastion.yaml"
        path.write_bytes(content)
        result = outcome(ConfigError, load_config, path, environ={}, read_secrets=False)
    if isinstance(result, ConfigError):
        assert result.source == str(path)
    else:
        assert isinstance(result, LoadedConfig)
    return result


@given(extra=st.integers(1, 4096))
@budget(10, deadline_ms=3000)
def test_a_file_over_the_cap_is_refused_unparsed(extra: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bastion.yaml"
        # Valid YAML all the way: only the size can be wrong.
        path.write_bytes(b"# " + b"x" * (MAX_CONFIG_BYTES + extra) + b"\n")
        result = outcome(ConfigError, load_config, path, environ={}, read_secrets=False)
    assert isinstance(result, ConfigError)
    assert "larger than" in result.message


def test_yaml_dates_and_bytes_in_the_config_are_explained() -> None:
    # The strategies above reach these; pin the two types JSON cannot produce.
    for value in (datetime.date(2020, 1, 1), b"\x00"):
        refused = outcome(ConfigError, parse_config, dict(VALID, public_base_url=value))
        assert isinstance(refused, ConfigError)
        assert "public_base_url" in refused.message


# A key of the valid config written a second time, somewhere in its YAML text.
@given(data=st.data())
@budget(100, deadline_ms=3000)
def test_a_repeated_key_is_refused_naming_both_lines(data: st.DataObject) -> None:
    text = yaml.safe_dump(VALID, sort_keys=False)
    lines = text.splitlines()
    keyed = [i for i, line in enumerate(lines) if line.rstrip().endswith(":") is False and ": " in line]
    first = data.draw(st.sampled_from(keyed))
    # Re-insert the same "key: value" line right after a later line of the same mapping, or
    # directly after itself: same indentation, same mapping.
    copy_line = lines[first]
    indent = len(copy_line) - len(copy_line.lstrip(" -"))
    lines.insert(first + 1, " " * indent + copy_line.lstrip(" -"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bastion.yaml"
        path.write_text("\n".join(lines) + "\n")
        result = outcome(ConfigError, load_config, path, environ={}, read_secrets=False)
    assert isinstance(result, ConfigError)
    assert f"on lines {first + 1} and {first + 2} " in result.message
    assert result.path.endswith(copy_line.lstrip(" -").split(":")[0])
