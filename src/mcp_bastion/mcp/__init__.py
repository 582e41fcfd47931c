"""MCP on the wire: JSON-RPC parsing, calls and their targets, era rules, sealed sessions, SSE."""
