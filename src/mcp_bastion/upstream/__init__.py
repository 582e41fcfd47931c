"""Upstreams: the pooled client, the gateway's own credentials, catalog fetches, forwarding.

Import from the modules themselves: the package re-exports nothing, so that `route` (which
needs `credentials`) can be imported by `exchange` without an import cycle through `catalog`.
"""
