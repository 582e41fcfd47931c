# mcp-bastion: the compiled gateway on a slim Python, as a non-root user.
#
#   docker build -t mcp-bastion .
#   docker run --read-only -p 8000:8000 -v "$PWD/bastion.yaml:/etc/mcp-bastion/bastion.yaml:ro" mcp-bastion
#
# Two stages: the first compiles the request path with mypyc (it needs a C compiler, which the
# full Python image has), the second holds only the installed wheel. Nothing is written at run
# time (no bytecode, audit to stdout by default), so the root filesystem may be read-only.
# docs/operations.md: configuration, secrets, probes and the Kubernetes manifests in deploy/.

ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-bookworm AS build
WORKDIR /src
COPY pyproject.toml hatch_build.py README.md ./
COPY src ./src
# MCP_BASTION_COMPILE=1: a build that cannot compile fails instead of shipping pure Python.
# Then every dependency as a wheel, the [cedar] extra's included, for an offline install below.
RUN MCP_BASTION_COMPILE=1 pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && pip wheel --no-cache-dir --wheel-dir /wheels "$(ls /wheels/mcp_bastion-*.whl)[cedar,redis]"

FROM python:${PYTHON_VERSION}-slim-bookworm
# The [cedar] and [redis] extras are installed too: a config with policy files, or with quotas
# in Redis (deploy/kubernetes/overlays/redis), needs them (without, it is refused at start-up).
COPY --from=build /wheels /wheels
RUN python -m venv /opt/mcp-bastion \
 && /opt/mcp-bastion/bin/pip install --no-cache-dir --no-index --find-links /wheels "mcp-bastion[cedar,redis]" \
 && rm -rf /wheels \
 && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin bastion
ENV PATH=/opt/mcp-bastion/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8000
# Liveness only: /healthz answers while the process serves (readiness is the orchestrator's
# probe of /readyz where it exists; see docs/operations.md).
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["mcp-bastion"]
CMD ["serve", "--config", "/etc/mcp-bastion/bastion.yaml"]
