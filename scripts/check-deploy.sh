#!/usr/bin/env bash
# Checks the deployment files with real validators (no container runtime works on these
# machines, so nothing here is run): the compose file against the Compose Specification
# schema (check-jsonschema), the Kubernetes manifests against the Kubernetes schemas
# (kubernetes-validate, strict), the Dockerfile (hadolint), and that the Dockerfile and
# `make up` build with the one shared script.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
K8S_VERSION="${K8S_VERSION:-1.30.0}"

check-jsonschema --builtin-schema vendor.compose-spec docker/compose.yaml

# Every resource the kustomization lists, and nothing it does not.
mapfile -t resources < <(awk '/^resources:/ {on = 1; next} on && /^  - / {print $2; next} on && /^[^ ]/ {on = 0}' docker/k8s/kustomization.yaml)
[ "${#resources[@]}" -gt 0 ] || { echo "check-deploy: docker/k8s/kustomization.yaml lists no resources" >&2; exit 1; }
for f in "${resources[@]}"; do
  [ -f "docker/k8s/$f" ] || { echo "check-deploy: kustomization lists missing docker/k8s/$f" >&2; exit 1; }
done
(cd docker/k8s && kubernetes-validate --strict --quiet -k "$K8S_VERSION" "${resources[@]}")
for f in $(awk '/^configMapGenerator:/ {on = 1} on && /^      - / {print $2}' docker/k8s/kustomization.yaml); do
  [ -f "docker/k8s/$f" ] || { echo "check-deploy: configMapGenerator file docker/k8s/$f is missing" >&2; exit 1; }
done

# The Dockerfile against hadolint's rules (docker/.hadolint.yaml says what is ignored, why).
hadolint --config docker/.hadolint.yaml docker/Dockerfile

# One build command: the image's and make up's.
grep -q '^RUN scripts/build-release.sh' docker/Dockerfile \
  || { echo "check-deploy: docker/Dockerfile does not build with scripts/build-release.sh" >&2; exit 1; }
grep -q 'scripts/build-release.sh' scripts/up.sh \
  || { echo "check-deploy: scripts/up.sh does not build with scripts/build-release.sh" >&2; exit 1; }
if grep -nE '^RUN .*cargo (build|install)' docker/Dockerfile; then
  echo "check-deploy: docker/Dockerfile runs cargo itself; use scripts/build-release.sh" >&2
  exit 1
fi
# The image's binaries are the ones the workspace builds.
for bin in $(awk -F'[()]' '/^BINARIES=/ {print $2}' scripts/build-release.sh); do
  grep -rqs "name = \"$bin\"" --include=Cargo.toml . || [ -f "backend/src/bin/$bin.rs" ] || [ -f "analytics/src/bin/$bin.rs" ] || [ "$bin" = sluice ] \
    || { echo "check-deploy: scripts/build-release.sh names $bin, which the workspace does not build" >&2; exit 1; }
done
# Each service linked to sluice-services is one it runs.
for service in $(awk -F'[()]' '/^SERVICES=/ {print $2}' scripts/build-release.sh); do
  grep -q "(\"$service\", $service::main)" services/src/main.rs \
    || { echo "check-deploy: scripts/build-release.sh links $service, which sluice-services does not run" >&2; exit 1; }
done
echo "check-deploy: compose schema, ${#resources[@]} Kubernetes manifests, the Dockerfile (hadolint) and the shared build script ok"
