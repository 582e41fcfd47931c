"""The Kubernetes manifests (deploy/kubernetes): each resource valid against the Kubernetes
schemas (kubernetes-validate, strict: an unknown or misspelt field fails), the pieces wired to
each other (selectors, ports, probes, the HPA's target, the config and secrets the pod mounts),
the pod locked down, and the config the ConfigMap carries accepted by the real
`mcp-bastion check-config`, secrets included, from files shaped as the Secret provides them."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from joserfc.jwk import ECKey

from .kustomize import build, by_kind, one

REPO = Path(__file__).resolve().parents[2]
LAYOUTS = sorted(p.parent for p in (REPO / "deploy" / "kubernetes").rglob("kustomization.yaml"))
# The oldest Kubernetes release still supported upstream when this was written, and the newest
# the schemas bundle: the manifests use nothing newer or removed.
VERSIONS = ("1.31", kubernetes_validate.latest_version())


@pytest.fixture(scope="module", params=LAYOUTS, ids=lambda p: str(p.relative_to(REPO)))
def rendered(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return build(request.param)


def test_there_is_a_base_layout() -> None:
    assert REPO / "deploy" / "kubernetes" / "base" in LAYOUTS


@pytest.mark.parametrize("version", VERSIONS)
def test_every_resource_is_valid_for_kubernetes(rendered: list[dict[str, Any]], version: str) -> None:
    for resource in rendered:
        kubernetes_validate.validate(resource, version, strict=True)


def test_a_misspelt_field_would_be_caught(rendered: list[dict[str, Any]]) -> None:
    # The check above can fail: strict validation refuses a field the schema does not know.
    deployment = json.loads(json.dumps(one(rendered, "Deployment", "mcp-bastion")))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, VERSIONS[0], strict=True)


def _pod(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(rendered, "Deployment", "mcp-bastion")["spec"]["template"]["spec"]
    return spec


def _gateway(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    containers = [c for c in _pod(rendered)["containers"] if c["name"] == "gateway"]
    assert len(containers) == 1
    return containers[0]


def test_selectors_match_the_pods(rendered: list[dict[str, Any]]) -> None:
    deployment = one(rendered, "Deployment", "mcp-bastion")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    service = one(rendered, "Service", "mcp-bastion")
    assert service["spec"]["selector"].items() <= labels.items()
    pdb = one(rendered, "PodDisruptionBudget", "mcp-bastion")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = one(rendered, "HorizontalPodAutoscaler", "mcp-bastion")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "mcp-bastion",
    }
    # Never fewer replicas than the PDB and a rolling update keep available.
    assert hpa["spec"]["minReplicas"] >= 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_ports_and_probes_point_at_what_the_gateway_serves(rendered: list[dict[str, Any]]) -> None:
    gateway = _gateway(rendered)
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    config = _config(rendered)
    assert ports["http"] == config["listen"]["port"]
    assert config["listen"]["host"] in ("0.0.0.0", "::")  # loopback would be unreachable in a pod
    service = one(rendered, "Service", "mcp-bastion")
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports.keys()
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = gateway[probe]["httpGet"]
        assert get["port"] in ports
        assert get["path"] in ("/healthz", "/readyz")
    assert gateway["livenessProbe"]["httpGet"]["path"] == "/healthz"  # liveness never waits on an IdP
    # Readiness: no traffic to a replica that has no IdP keys yet or whose audit sink fails.
    assert gateway["readinessProbe"]["httpGet"]["path"] == "/readyz"


def test_the_metrics_port_is_the_metrics_listener(rendered: list[dict[str, Any]]) -> None:
    gateway = _gateway(rendered)
    ports = {p["name"]: p["containerPort"] for p in gateway["ports"]}
    metrics = _config(rendered)["telemetry"]["metrics"]
    assert metrics["enabled"] is True
    assert ports["metrics"] == metrics["port"] != ports["http"]
    assert metrics["host"] in ("0.0.0.0", "::")  # Prometheus scrapes the pod's address
    annotations = one(rendered, "Deployment", "mcp-bastion")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics["port"])
    # The Service (what clients reach) never routes to the metrics port.
    service = one(rendered, "Service", "mcp-bastion")
    assert "metrics" not in {p["targetPort"] for p in service["spec"]["ports"]}


def test_the_quota_store_is_a_service_of_the_layout_only_the_gateway_reaches(
    rendered: list[dict[str, Any]],
) -> None:
    quotas = _config(rendered).get("quotas")
    if quotas is None or quotas.get("store") != "redis":
        assert not by_kind(rendered, "NetworkPolicy")  # the base: no store, nothing to guard
        return
    url = urlsplit(quotas["redis"]["url"])
    service = one(rendered, "Service", url.hostname)
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == url.port]
    selected = [
        d
        for d in by_kind(rendered, "Deployment")
        if service["spec"]["selector"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    ]
    (store,) = selected
    container = store["spec"]["template"]["spec"]["containers"][0]
    assert port["targetPort"] in {p["name"] for p in container["ports"]}
    # The store has no password: a NetworkPolicy admits the gateway's pods to it, nothing else.
    (policy,) = by_kind(rendered, "NetworkPolicy")
    assert (
        policy["spec"]["podSelector"]["matchLabels"].items()
        <= store["spec"]["template"]["metadata"]["labels"].items()
    )
    (rule,) = policy["spec"]["ingress"]
    (source,) = rule["from"]
    assert (
        source["podSelector"]["matchLabels"]
        == one(rendered, "Deployment", "mcp-bastion")["spec"]["selector"]["matchLabels"]
    )


def test_every_pod_is_locked_down(rendered: list[dict[str, Any]]) -> None:
    for deployment in by_kind(rendered, "Deployment"):
        _assert_locked_down(deployment["spec"]["template"]["spec"])


def _assert_locked_down(pod: dict[str, Any]) -> None:
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        assert "memory" in container["resources"]["limits"]
        assert not any("value" in env and "key" in env["name"].lower() for env in container.get("env", ()))


def _config(rendered: list[dict[str, Any]]) -> dict[str, Any]:
    config: dict[str, Any] = yaml.safe_load(
        one(rendered, "ConfigMap", "mcp-bastion-config")["data"]["bastion.yaml"]
    )
    return config


def _mounts(rendered: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Mount path → the volume mounted there."""
    volumes = {v["name"]: v for v in _pod(rendered)["volumes"]}
    return {m["mountPath"]: volumes[m["name"]] for m in _gateway(rendered)["volumeMounts"]}


def test_the_config_file_the_pod_reads_is_the_configmaps(rendered: list[dict[str, Any]]) -> None:
    args = _gateway(rendered)["args"]
    path = Path(args[args.index("--config") + 1])
    volume = _mounts(rendered)[str(path.parent)]
    assert volume["configMap"]["name"] == "mcp-bastion-config"
    assert path.name in one(rendered, "ConfigMap", "mcp-bastion-config")["data"]


def _secret_files(rendered: list[dict[str, Any]]) -> dict[str, str]:
    """Each file the pod gets from the Secret: path → key in the Secret."""
    files = {}
    for mount, volume in _mounts(rendered).items():
        if "secret" in volume:
            assert volume["secret"]["secretName"] == "mcp-bastion-secrets"
            for item in volume["secret"]["items"]:
                files[f"{mount}/{item['path']}"] = item["key"]
    return files


def test_the_config_passes_check_config_with_secrets_shaped_as_documented(
    rendered: list[dict[str, Any]], tmp_path: Path
) -> None:
    """The Secret's files as the kustomization's comment says to make them (a 32-byte base64
    session key, a private EC JWK), at the mount paths: the real check-config reads them."""
    files = _secret_files(rendered)
    config = _config(rendered)
    named = {config["sessions"]["key"]["file"], config["signing"]["key"]["file"]}
    assert named <= files.keys(), (
        f"the config names secret files the pod does not get: {named - files.keys()}"
    )
    contents = {
        "session-key": base64.b64encode(os.urandom(32)).decode() + "\n",
        "signing-key.jwk": json.dumps(ECKey.generate_key("P-256").as_dict(private=True)),
    }
    text = one(rendered, "ConfigMap", "mcp-bastion-config")["data"]["bastion.yaml"]
    for path, key in files.items():
        local = tmp_path / key
        local.write_text(contents[key])
        text = text.replace(path, str(local))
    (tmp_path / "bastion.yaml").write_text(text)
    checked = subprocess.run(
        [sys.executable, "-m", "mcp_bastion.cli", "check-config", str(tmp_path / "bastion.yaml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "valid" in checked.stdout
    assert "secrets not read" not in checked.stdout


def test_every_kind_the_layout_needs_is_there(rendered: list[dict[str, Any]]) -> None:
    kinds = {r["kind"] for r in rendered}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget", "ConfigMap"} <= kinds
    assert not by_kind(rendered, "Secret")  # secrets are created by the operator, never committed


def test_an_overlay_replaces_the_bases_config_and_the_renderer_refuses_what_it_cannot_replace(
    tmp_path: Path,
) -> None:
    overlay = REPO / "deploy" / "kubernetes" / "overlays" / "redis"
    (config,) = by_kind(build(overlay), "ConfigMap")
    assert config["data"]["bastion.yaml"] == (overlay / "bastion.yaml").read_text()
    (tmp_path / "bastion.yaml").write_text("{}")
    (tmp_path / "kustomization.yaml").write_text(
        "configMapGenerator: [{name: mcp-bastion-config, behavior: replace, files: [bastion.yaml]}]"
    )
    with pytest.raises(ValueError, match="replaces a ConfigMap the resources lack"):
        build(tmp_path)
