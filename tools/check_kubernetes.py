"""Check deploy/kubernetes against Kubernetes' own JSON schemas, strictly and offline.

kubernetes-validate ships the schemas inside its wheel, so this needs neither a
network nor a cluster. The strict schemas reject every field Kubernetes does
not define, so a typo (`grcp:` for `grpc:`) fails here instead of at apply
time. Unlike the kubernetes-validate command, which only warns, a kind or
apiVersion with no schema is a failure too, so a misspelt kind cannot pass.
kustomization.yaml has no Kubernetes schema; instead it must list exactly the
*.yaml manifests beside it, so `kubectl apply -k` leaves none out.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

import yaml
from kubernetes_validate.utils import SchemaNotFoundError, ValidationError, latest_version, validate

ROOT: Final = Path(__file__).resolve().parent.parent
MANIFESTS: Final = ROOT / "deploy" / "kubernetes"
KUSTOMIZATION: Final = "kustomization.yaml"
# Applied by hand, never by kustomize (see secret.yaml.example), but checked all the same.
EXAMPLE_SUFFIX: Final = ".yaml.example"
# The oldest Kubernetes the manifests are for (the preStop sleep action is on
# by default from 1.30) and the newest the schemas know: a field newer than the
# first, or gone from the second, fails.
OLDEST: Final = "1.30"
VERSIONS: Final = (OLDEST, ".".join(latest_version().split(".")[:2]))

Resource = dict[str, Any]


def manifest_files(directory: Path = MANIFESTS) -> list[Path]:
    """Every manifest and example in directory, without the kustomization."""
    files = [*directory.glob("*.yaml"), *directory.glob(f"*{EXAMPLE_SUFFIX}")]
    return sorted(f for f in files if f.name != KUSTOMIZATION)


def resources(directory: Path = MANIFESTS) -> list[tuple[str, Resource]]:
    """(file name, resource) for every document of every manifest and example."""
    found = []
    for path in manifest_files(directory):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc is not None:
                found.append((path.name, doc))
    return found


def _kustomization_problems(directory: Path) -> list[str]:
    kustomization = yaml.safe_load((directory / KUSTOMIZATION).read_text())
    listed = set(kustomization.get("resources", []))
    present = {p.name for p in manifest_files(directory) if not p.name.endswith(EXAMPLE_SUFFIX)}
    return [f"{KUSTOMIZATION}: {name} is not listed in resources" for name in present - listed] + [
        f"{KUSTOMIZATION}: {name} is listed but missing" for name in listed - present
    ]


def _schema_problem(resource: Resource, version: str) -> str | None:
    try:
        validate(resource, version, strict=True)
    except ValidationError as e:
        path = ".".join(str(p) for p in e.path) or "(top level)"
        return f"Kubernetes {version}: {path}: {e.message}"
    except SchemaNotFoundError as e:
        return f"Kubernetes {version}: {e.message}"
    return None


def problems(directory: Path = MANIFESTS, versions: tuple[str, ...] = VERSIONS) -> list[str]:
    """Every problem found, one line each; empty when all is well."""
    found = _kustomization_problems(directory)
    try:
        docs = resources(directory)
    except yaml.YAMLError as e:
        return [*found, f"YAML: {e}"]
    for name, resource in docs:
        where = f"{name}: {resource.get('kind')}/{resource.get('metadata', {}).get('name')}"
        for version in versions:
            problem = _schema_problem(resource, version)
            if problem is not None:
                found.append(f"{where}: {problem}")
    return found


def main() -> int:
    found = problems()
    for p in found:
        print(p, file=sys.stderr)
    versions = " and ".join(VERSIONS)
    print(
        f"kubernetes manifests: {len(found)} problem(s) in {len(resources())} resource(s), "
        f"strict schemas of Kubernetes {versions}"
    )
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
