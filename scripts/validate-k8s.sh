#!/usr/bin/env bash
# Validates the Kubernetes manifests offline, with no cluster: renders every
# overlay with `kubectl kustomize`, checks the built-in kinds against the
# Kubernetes OpenAPI schemas shipped by kubernetes-validate (strict: unknown
# fields fail), and the custom resources and the wiring between objects with
# scripts/check_k8s.py. First proves both checkers reject a broken manifest,
# so a pass means something.
# Usage: scripts/validate-k8s.sh
# kubernetes-validate is installed once into a venv under ~/.cache/o2ohub.
set -euo pipefail
cd "$(dirname "$0")/.."

KUBE_VERSIONS=(1.32.0 1.37.0)
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/o2ohub/k8s-venv"
ADAPTER=k8s/cluster/prometheus-adapter-values.yaml

fail() { printf 'validate-k8s: %s\n' "$*" >&2; exit 1; }

command -v kubectl >/dev/null || fail "kubectl is not on PATH (it renders the overlays: kubectl kustomize)"
if [[ ! -x "$VENV/bin/kubernetes-validate" ]]; then
    echo "installing kubernetes-validate into $VENV"
    python3 -m venv "$VENV" || fail "cannot create a Python venv at $VENV (apt-get install python3-venv)"
    "$VENV/bin/pip" install --quiet 'kubernetes-validate==1.37.0' \
        || fail "cannot install kubernetes-validate from PyPI into $VENV"
fi
PY="$VENV/bin/python"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# The checkers must bite: a Deployment with a misspelt field and a topic
# whose min.insync.replicas exceeds its replicas must both be refused.
cat >"$out/broken.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken}
spec:
  replicas: 1
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers: [{name: c, image: x, readinessProbes: {}}]
---
apiVersion: kafka.strimzi.io/v1
kind: KafkaTopic
metadata: {name: broken, labels: {strimzi.io/cluster: c}}
spec: {partitions: 1, replicas: 1, config: {min.insync.replicas: 2}}
EOF
echo "-- self-test: the checkers refuse a broken manifest"
if "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn "$out/broken.yaml" >/dev/null 2>&1; then
    fail "kubernetes-validate accepted a Deployment with an unknown field: the schema check is not working"
fi
if "$PY" scripts/check_k8s.py "$out/broken.yaml" >/dev/null 2>&1; then
    fail "check_k8s.py accepted a KafkaTopic with min.insync.replicas above replicas"
fi

overlays=(k8s/overlays/*/)
for dir in "${overlays[@]}"; do
    name=$(basename "$dir")
    file="$out/$name.yaml"
    echo "-- $name: kubectl kustomize $dir"
    kubectl kustomize "$dir" >"$file" || fail "$dir does not render"
    echo "   $(grep -c '^kind:' "$file") objects"
    for v in "${KUBE_VERSIONS[@]}"; do
        echo "   kubernetes-validate --strict (Kubernetes $v)"
        # Warnings are the CRD kinds it has no schema for; check_k8s.py takes those.
        "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$v" "$file" \
            || fail "$name does not validate against the Kubernetes $v schemas (see above)"
    done
    echo "   custom resources and wiring"
    "$PY" scripts/check_k8s.py "$file" "$ADAPTER" | sed 's/^/ /' \
        || fail "$name: custom resources or wiring are wrong (see above)"
done
echo "-- ${#overlays[@]} overlays render and validate"
