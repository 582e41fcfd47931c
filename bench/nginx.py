"""The one-hop reference: Debian's nginx as a plain `proxy_pass`, config generated per run.

One worker process (as the gateway's default single worker), HTTP/1.1 keepalive connections
to the upstream, no response buffering (SSE passes through as it comes), no access log
(the gateway logs to its audit file instead; nginx's access log would be its only extra).
"""

from __future__ import annotations

from pathlib import Path

NGINX = "/usr/sbin/nginx"

TEMPLATE = """\
daemon off;
master_process on;
worker_processes 1;
worker_rlimit_nofile 16384;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;

events {{
    worker_connections 8192;
}}

http {{
    access_log off;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;

    upstream mcp_fixture {{
        server 127.0.0.1:{upstream_port};
        keepalive 64;
    }}

    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            proxy_pass http://mcp_fixture;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
            proxy_read_timeout 3600s;
        }}
    }}
}}
"""


def write_nginx_config(prefix: Path, port: int, upstream_port: int) -> Path:
    prefix.mkdir(parents=True, exist_ok=True)
    config = prefix / "nginx.conf"
    config.write_text(TEMPLATE.format(prefix=prefix.resolve(), port=port, upstream_port=upstream_port))
    return config


def nginx_argv(config: Path) -> list[str]:
    prefix = str(config.parent.resolve())
    # -e: the start-up error log too, so nothing is written under /var/log.
    return [NGINX, "-p", prefix, "-c", str(config.resolve()), "-e", f"{prefix}/error.log"]
