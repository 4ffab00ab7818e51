"""deploy/kubernetes: valid for Kubernetes, and consistent with the service it runs.

The schema check is tools/check_kubernetes.py, which CI also runs on its own.
The rest ties the manifests to the service: every variable is a real option,
the probes ask the health port, the grace period covers the drain, the pods
are locked down, AWS credentials come only from IRSA, and the autoscaler
cannot outrun AWS's CreateRoom quota while Redis is down. No network, no
cluster.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any, Final

import pytest
import yaml
from ivschat_grpc.runtime import settings as config

from tools import check_kubernetes

# AWS allows 5 CreateRoom calls a second per account and region, for all replicas together.
AWS_CREATE_ROOM_QUOTA: Final = 5.0
REDIS_DOWN_CREATE_RATE: Final = f"{config.ENV_PREFIX}REDIS_DOWN_CREATE_RATE"
# config.load reads this beside the --auth-token-file row, which has no variable of its own.
AUTH_TOKENS: Final = f"{config.ENV_PREFIX}AUTH_TOKENS"
# Options whose values name files that exist only inside the pod.
FILES_IN_THE_POD: Final = frozenset({"tls_cert", "tls_key", "tls_client_ca"})

Resource = dict[str, Any]
RESOURCES: Final = check_kubernetes.resources()


def one(kind: str, name: str) -> Resource:
    """The one resource of that kind and name, from the manifests and the example."""
    found = [r for _, r in RESOURCES if r["kind"] == kind and r["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def kinds(kind: str) -> list[Resource]:
    """Every resource of that kind."""
    return [r for _, r in RESOURCES if r["kind"] == kind]


SERVER: Final = one("Deployment", "ivschat-grpc")
POD: Final = SERVER["spec"]["template"]["spec"]
CONTAINER: Final = POD["containers"][0]
SETTINGS: Final[dict[str, str]] = one("ConfigMap", "ivschat-grpc")["data"]
SECRET: Final = one("Secret", "ivschat-grpc")
HPA: Final = one("HorizontalPodAutoscaler", "ivschat-grpc")


def container_port(name: str) -> int:
    """The server container's port of that name."""
    ports = {p["name"]: p["containerPort"] for p in CONTAINER["ports"]}
    port: int = ports[name]
    return port


# --- the schema check ---------------------------------------------------------


def test_manifests_pass_the_strict_schema_check() -> None:
    assert check_kubernetes.problems() == []


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("deployment.yaml", "grpc:\n", "grcp:\n", "'grcp' was unexpected"),
        ("service.yaml", "kind: Service\n", "kind: Servise\n", "kind Servise"),
        ("kustomization.yaml", "  - redis.yaml\n", "", "redis.yaml is not listed"),
        ("kustomization.yaml", "  - redis.yaml\n", "  - redis.yaml\n  - gone.yaml\n", "gone.yaml"),
        ("secret.yaml.example", "stringData:", "stringdata:", "'stringdata' was unexpected"),
    ],
)
def test_the_schema_check_catches(
    tmp_path: Path, file: str, old: str, new: str, expected: str
) -> None:
    copy = tmp_path / "kubernetes"
    shutil.copytree(check_kubernetes.MANIFESTS, copy)
    text = (copy / file).read_text()
    assert old in text
    (copy / file).write_text(text.replace(old, new, 1))
    found = check_kubernetes.problems(copy)
    assert any(expected in p for p in found), found


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kustomize_renders_every_listed_resource() -> None:
    rendered = subprocess.run(  # noqa: S603 - fixed argv, no shell
        ["kubectl", "kustomize", str(check_kubernetes.MANIFESTS)],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    got = {(r["kind"], r["metadata"]["name"]) for r in yaml.safe_load_all(rendered)}
    applied = {
        (r["kind"], r["metadata"]["name"])
        for f, r in RESOURCES
        if not f.endswith(check_kubernetes.EXAMPLE_SUFFIX)
    }
    assert got == applied
    # The example Secrets, applied by hand, land where kustomize puts everything else.
    namespaces = {r["metadata"].get("namespace") for r in yaml.safe_load_all(rendered)}
    assert namespaces == {None, SECRET["metadata"]["namespace"]}


# --- the service's settings -----------------------------------------------------


def option_names() -> frozenset[str]:
    """Every variable the service reads."""
    return frozenset(e for o in config.OPTIONS for e in o.env) | {AUTH_TOKENS}


def test_auth_tokens_variable_is_read() -> None:
    settings = config.load(argparse.Namespace(), {AUTH_TOKENS: "a,b"})
    assert settings.auth.tokens == ("a", "b")


def test_every_variable_is_an_option() -> None:
    names = set(SETTINGS) | set(SECRET["stringData"])
    names |= {e["name"] for c in POD["containers"] for e in c.get("env", [])}
    unknown = names - option_names()
    assert not unknown, f"not options in config.OPTIONS: {sorted(unknown)}"


def test_every_setting_parses() -> None:
    by_env = {e: o for o in config.OPTIONS for e in o.env}
    for name, value in SETTINGS.items():
        option = by_env.get(name)
        if option is None or option.field in FILES_IN_THE_POD:
            continue
        option.convert(value)  # raises ConfigError on a bad value


def test_no_aws_keys_anywhere() -> None:
    text = "\n".join(p.read_text() for p in check_kubernetes.manifest_files())
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        assert f"{name}:" not in text
        assert f"name: {name}" not in text


def test_aws_credentials_come_from_irsa() -> None:
    account = one("ServiceAccount", POD["serviceAccountName"])
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert re.fullmatch(r"arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+", role)


# --- ports, probes, termination ----------------------------------------------------


def test_ports_match_the_settings() -> None:
    assert container_port("grpc") == int(SETTINGS["IVSCHAT_GRPC_PORT"])
    assert container_port("health") == int(SETTINGS["IVSCHAT_GRPC_HEALTH_PORT"])
    assert container_port("metrics") == int(SETTINGS["IVSCHAT_GRPC_METRICS_PORT"])
    names = {p["name"] for p in CONTAINER["ports"]}
    for service in kinds("Service"):
        if service["spec"]["selector"] == SERVER["spec"]["selector"]["matchLabels"]:
            assert {p["targetPort"] for p in service["spec"]["ports"]} <= names


def test_probes_ask_the_health_port() -> None:
    health = int(SETTINGS["IVSCHAT_GRPC_HEALTH_PORT"])
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert CONTAINER[probe]["grpc"] == {"port": health}, probe


def prestop_seconds() -> int:
    seconds: int = CONTAINER["lifecycle"]["preStop"]["sleep"]["seconds"]
    return seconds


def test_termination_grace_covers_the_drain() -> None:
    grace = float(SETTINGS["IVSCHAT_GRPC_GRACE"])
    period = POD["terminationGracePeriodSeconds"]
    assert period >= grace + prestop_seconds()
    # And liveness cannot restart a pod that is still within its termination.
    live = CONTAINER["livenessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] >= period


def test_service_links_cannot_shadow_settings() -> None:
    # A Service named ivschat-grpc would inject IVSCHAT_GRPC_PORT=tcp://...
    assert POD["enableServiceLinks"] is False


# --- lockdown -------------------------------------------------------------------------


@pytest.mark.parametrize("deployment", kinds("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_pods_are_locked_down(deployment: Resource) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert set(container["resources"]) == {"requests", "limits"}


def test_server_runs_as_the_image_user_with_a_writable_tmp() -> None:
    assert POD["securityContext"]["runAsUser"] == 10001
    assert CONTAINER["securityContext"]["runAsUser"] == 10001
    volumes = {v["name"]: v for v in POD["volumes"]}
    tmp = next(m for m in CONTAINER["volumeMounts"] if m["mountPath"] == "/tmp")  # noqa: S108
    assert "emptyDir" in volumes[tmp["name"]]
    assert not tmp.get("readOnly", False)


def test_tls_and_tokens_come_from_secrets() -> None:
    volumes = {v["name"]: v for v in POD["volumes"]}
    tls_mounts = [m for m in CONTAINER["volumeMounts"] if "secret" in volumes[m["name"]]]
    assert len(tls_mounts) == 1
    mount = tls_mounts[0]
    assert mount["readOnly"] is True
    secret = one("Secret", volumes[mount["name"]]["secret"]["secretName"])
    assert secret["type"] == "kubernetes.io/tls"
    assert SETTINGS["IVSCHAT_GRPC_TLS_CERT"] == f"{mount['mountPath']}/tls.crt"
    assert SETTINGS["IVSCHAT_GRPC_TLS_KEY"] == f"{mount['mountPath']}/tls.key"
    env_secrets = [s["secretRef"]["name"] for s in CONTAINER["envFrom"] if "secretRef" in s]
    assert env_secrets == [SECRET["metadata"]["name"]]
    assert AUTH_TOKENS in SECRET["stringData"]
    assert AUTH_TOKENS not in SETTINGS


# --- scaling and AWS's quota --------------------------------------------------------------


def test_autoscaler_cannot_outrun_the_quota_while_redis_is_down() -> None:
    # Set explicitly, so that both factors are in this directory to be read together.
    rate = float(SETTINGS[REDIS_DOWN_CREATE_RATE])
    assert rate > 0
    assert HPA["spec"]["maxReplicas"] * rate <= AWS_CREATE_ROOM_QUOTA


def test_autoscaler_drives_the_server() -> None:
    target = HPA["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", SERVER["metadata"]["name"])
    assert HPA["spec"]["minReplicas"] == SERVER["spec"]["replicas"] == 3
    assert [m["resource"]["name"] for m in HPA["spec"]["metrics"]] == ["cpu"]
    budget = one("PodDisruptionBudget", "ivschat-grpc")
    assert budget["spec"]["selector"] == SERVER["spec"]["selector"]
