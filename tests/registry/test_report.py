"""The tools report as a table and as JSON; untrusted names cannot reach the terminal raw."""

from __future__ import annotations

import json

import pytest

from mcp_bastion.registry.report import printable, resources_table, tools_document, tools_table
from mcp_bastion.registry.resources import PublishedResource, PublishedScope
from mcp_bastion.registry.tools import ServerTools, ToolEntry

SERVER = ServerTools(
    "demo",
    "https://mcp.example.com/demo/mcp",
    "http://10.0.0.5:9001/mcp",
    (
        ToolEntry(
            "echo", {"readOnlyHint": True, "destructiveHint": False}, ("tools.read",), "annotation", True
        ),
        ToolEntry("wipe", {"destructiveHint": "yes"}, ("tools.write", "x.destroy"), "default", True),
        ToolEntry("bare", {}, ("tools.write",), "default", True),
        ToolEntry("ghost", {}, ("admin",), "override", False),
    ),
)


def test_the_table_has_a_row_per_tool_with_hints_scopes_and_source() -> None:
    assert tools_table([SERVER]) == "\n".join(
        [
            "demo  https://mcp.example.com/demo/mcp  (upstream http://10.0.0.5:9001/mcp)",
            "  TOOL   HINTS                            SCOPES                 FROM",
            "  echo   readOnly=true destructive=false  tools.read             annotation",
            "  wipe   destructive=?                    tools.write x.destroy  default",
            "  bare   -                                tools.write            default",
            "  ghost  (not listed by the upstream)     admin                  override",
        ]
    )


def test_a_server_that_failed_shows_its_error_and_blocks_are_separated() -> None:
    failed = ServerTools(
        "down", "https://mcp.example.com/down/mcp", "http://10.0.0.6/mcp", (), "upstream is unreachable"
    )

    text = tools_table([failed, SERVER])

    assert text.startswith(
        "down  https://mcp.example.com/down/mcp  (upstream http://10.0.0.6/mcp)\n"
        "  error: upstream is unreachable\n"
        "  (no tools)\n\n"
        "demo  "
    )


def test_the_json_document_keeps_every_field() -> None:
    document = tools_document([SERVER])

    assert json.loads(json.dumps(document)) == document
    [server] = document["servers"]
    assert server["error"] is None
    assert server["tools"][1] == {
        "name": "wipe",
        "title": None,
        "description": None,
        "annotations": {"destructiveHint": "yes"},
        "scopes": ["tools.write", "x.destroy"],
        "source": "default",
        "listed": True,
    }
    assert server["tools"][3]["listed"] is False


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[2J\x1b[31mred", "\\u001b[2J\\u001b[31mred"),  # ANSI: clear screen, colour
        ("admin\u202egnp.exe", "admin\\u202egnp.exe"),  # right-to-left override (Trojan Source)
        ("del\u200bete", "del\\u200bete"),  # zero-width space: a look-alike name
        ("line\nbreak\r", "line\\u000abreak\\u000d"),
        ("bell\x07\x7f\x9b", "bell\\u0007\\u007f\\u009b"),  # C0, DEL, C1 CSI
        ("café 日本", "café 日本"),  # ordinary text is kept
    ],
    ids=["ansi", "bidi", "zero-width", "newlines", "c0-del-c1", "plain"],
)
def test_untrusted_text_is_escaped_for_the_terminal(raw: str, shown: str) -> None:
    assert printable(raw, limit=200) == shown


def test_long_text_is_cut_with_an_ellipsis() -> None:
    assert printable("x" * 60) == "x" * 47 + "…"
    assert printable("x" * 48) == "x" * 48


def test_a_hostile_tool_name_reaches_the_table_escaped() -> None:
    hostile = ServerTools(
        "s",
        "https://m.example/s/mcp",
        "http://u/mcp",
        (ToolEntry("\x1b]0;pwned\x07", {}, ("tools.write",), "default", True),),
    )

    table = tools_table([hostile])

    assert "\x1b" not in table
    assert "\x07" not in table
    assert "\\u001b]0;pwned\\u0007" in table


def test_the_resources_table_lists_each_scope_with_its_description() -> None:
    resource = PublishedResource(
        "demo",
        "Demo",
        "https://mcp.example.com/demo/mcp",
        (PublishedScope("tools.read", "Demo: read", False), PublishedScope("admin", "Demo: admin", True)),
    )

    assert resources_table([resource]) == (
        "demo  https://mcp.example.com/demo/mcp\n  tools.read  Demo: read\n  admin       Demo: admin"
    )
