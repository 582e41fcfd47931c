"""Two sample upstream MCP servers, built with the official SDK, served as ASGI apps at ``/mcp``.

They are what the gateway sits in front of in the demo and in end-to-end tests:

* ``demo`` — read-only tools (``echo``, ``add``), a tool that changes state
  (``set_greeting``) and a destructive one (``reset_greeting``), the resource
  ``demo://greeting`` and the prompt ``greet``.
* ``notes`` — an in-memory notebook: ``list_notes`` and ``read_note`` are read-only,
  ``add_note`` writes, ``delete_note`` destroys; the resource template ``notes://{note_id}``
  and the prompt ``summarize_note``.

Each app speaks both protocol eras the SDK serves on one endpoint: 2025-11-25 (``initialize``,
``Mcp-Session-Id``) and 2026-07-28 (stateless, ``server/discover``). The tool annotations
(``readOnlyHint``, ``destructiveHint``) are what a gateway policy can key on.

The apps trust their caller completely: they do no authentication (the gateway in front is the
authentication; a bearer token it forwards is ignored) and no Host/Origin checks, so a gateway
on loopback, or one forwarding the public ``Host``, is never refused. Never expose them directly.

Every call builds a fresh app with its own state. The SDK's session manager runs inside the
app's lifespan and can run only once, so serve each app once. uvicorn runs the lifespan; a
parent app that mounts one of these must run it too (Starlette's ``Mount`` does not).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from starlette.types import ASGIApp

__all__ = ["MCP_PATH", "build_demo_upstream", "build_notes_upstream"]

MCP_PATH = "/mcp"

DEFAULT_GREETING = "Hello"

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True)
_WRITES = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=True)
_ADDS = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False)
_DESTROYS = ToolAnnotations(read_only_hint=False, destructive_hint=True, idempotent_hint=True)

# The SDK turns DNS-rebinding protection on by default for a loopback bind and would answer
# 421 to any Host outside its list. These apps only ever sit behind the gateway, which checks
# Host/Origin itself at the edge, so the upstream check is off rather than half-duplicated.
_NO_HOST_CHECKS = TransportSecuritySettings(enable_dns_rebinding_protection=False)


def serve_at_mcp_path(server: MCPServer) -> ASGIApp:
    """The SDK's Streamable HTTP app for ``server`` at ``/mcp``, without auth or Host checks."""
    return server.streamable_http_app(streamable_http_path=MCP_PATH, transport_security=_NO_HOST_CHECKS)


@dataclass
class _Greeting:
    text: str = DEFAULT_GREETING


def build_demo_upstream() -> ASGIApp:
    """The ``demo`` server: echo/add (read-only), set_greeting (writes), reset_greeting (destructive)."""
    server = MCPServer("demo", version="1.0.0", instructions="A small demo server behind mcp-bastion.")
    state = _Greeting()

    @server.tool(annotations=_READ_ONLY)
    def echo(text: str) -> str:
        """Return the text unchanged."""
        return text

    @server.tool(annotations=_READ_ONLY)
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    @server.tool(annotations=_WRITES)
    def set_greeting(greeting: str) -> str:
        """Change the greeting the server uses; returns the new greeting."""
        state.text = greeting
        return state.text

    @server.tool(annotations=_DESTROYS)
    def reset_greeting() -> str:
        """Throw away the current greeting and restore the default one."""
        state.text = DEFAULT_GREETING
        return state.text

    @server.resource("demo://greeting", name="greeting", mime_type="text/plain")
    def current_greeting() -> str:
        """The greeting the server currently uses."""
        return state.text

    @server.prompt()
    def greet(name: str) -> str:
        """Ask the model to greet someone with the server's greeting."""
        return f"Greet {name} warmly, starting with {state.text!r}."

    return serve_at_mcp_path(server)


@dataclass
class _Notebook:
    notes: dict[str, dict[str, str]] = field(default_factory=dict)
    ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def get(self, note_id: str) -> dict[str, str]:
        try:
            return self.notes[note_id]
        except KeyError:
            raise LookupError(f"No note with id {note_id!r}; list_notes shows the ids that exist.") from None


def build_notes_upstream() -> ASGIApp:
    """The ``notes`` server: an in-memory notebook, empty when the app is built."""
    server = MCPServer("notes", version="1.0.0", instructions="An in-memory notebook behind mcp-bastion.")
    notebook = _Notebook()

    @server.tool(annotations=_READ_ONLY)
    def list_notes() -> list[dict[str, str]]:
        """List every note's id and title."""
        return [{"id": note["id"], "title": note["title"]} for note in notebook.notes.values()]

    @server.tool(annotations=_READ_ONLY)
    def read_note(note_id: str) -> dict[str, str]:
        """Read one note: its id, title and body."""
        try:
            return notebook.get(note_id)
        except LookupError as exc:
            raise ToolError(str(exc)) from None

    @server.tool(annotations=_ADDS)
    def add_note(title: str, body: str) -> dict[str, str]:
        """Add a note; returns it with its new id."""
        note_id = str(next(notebook.ids))
        notebook.notes[note_id] = {"id": note_id, "title": title, "body": body}
        return notebook.notes[note_id]

    @server.tool(annotations=_DESTROYS)
    def delete_note(note_id: str) -> str:
        """Delete a note for good; returns the id deleted."""
        if notebook.notes.pop(note_id, None) is None:
            raise ToolError(f"No note with id {note_id!r}; list_notes shows the ids that exist.")
        return note_id

    @server.resource("notes://{note_id}", name="note", mime_type="text/markdown")
    def note_resource(note_id: str) -> str:
        """One note as Markdown."""
        try:
            note = notebook.get(note_id)
        except LookupError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return f"# {note['title']}\n\n{note['body']}\n"

    @server.prompt()
    def summarize_note(note_id: str) -> str:
        """Ask the model to summarize one note."""
        return f"Summarize the note notes://{note_id} in one sentence."

    return serve_at_mcp_path(server)
