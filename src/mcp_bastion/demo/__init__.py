"""Sample MCP servers for demonstrations and tests: the upstreams the gateway protects."""
