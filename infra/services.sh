#!/usr/bin/env bash
# Installs, starts and stops TinyTrail's backing services on this machine without
# Docker: Apache Kafka (KRaft, jars from Maven Central), PostgreSQL and Redis
# (Debian packages). Everything binds to 127.0.0.1; data lives under
# $TINYTRAIL_LOCAL_DIR (default: <repo>/.local). Idempotent: install skips what
# is present, start skips what already answers.
#
#   infra/services.sh install | start | stop | status | env | restart <svc> | stop-one <svc> | start-one <svc>
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
LOCAL=${TINYTRAIL_LOCAL_DIR:-$ROOT/.local}
PG_PORT=${TINYTRAIL_PG_PORT:-54329}
REDIS_PORT=${TINYTRAIL_REDIS_PORT:-63799}
KAFKA_PORT=${TINYTRAIL_KAFKA_PORT:-19092}
KAFKA_CPORT=${TINYTRAIL_KAFKA_CONTROLLER_PORT:-19093}
KAFKA_HOME=$LOCAL/kafka
KAFKA_LIBS=${TINYTRAIL_KAFKA_LIBS:-$HOME/.cache/tinytrail/kafka-libs}
PG_BIN=${TINYTRAIL_PG_BIN:-}

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] ERROR: %s\n' "$*" >&2; exit 1; }

usage() {
  sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  cat <<USAGE

Commands:
  install          apt-get postgresql/redis-server if missing; resolve Kafka jars with Maven
  start            start Postgres, Redis and Kafka (waits until each answers)
  stop             stop all three
  status           show which services answer
  env              print the TINYTRAIL_* variables that point at these services
  stop-one NAME    stop one service (postgres|redis|kafka), for fault tests
  start-one NAME   start one service
Ports: Postgres $PG_PORT, Redis $REDIS_PORT, Kafka $KAFKA_PORT (controller $KAFKA_CPORT).
USAGE
}

find_pg_bin() {
  if [ -n "$PG_BIN" ]; then echo "$PG_BIN"; return; fi
  local d
  d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  [ -n "$d" ] || die "PostgreSQL binaries not found; run: infra/services.sh install"
  echo "$d"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # name port seconds logfile
  local i
  for ((i = 0; i < $3 * 5; i++)); do
    port_open "$2" && return 0
    sleep 0.2
  done
  log "$1 did not answer on 127.0.0.1:$2 within $3 s; last lines of $4:"
  tail -n 30 "$4" >&2 || true
  return 1
}

install() {
  local need=()
  ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
  command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
  command -v mvn >/dev/null 2>&1 || need+=(maven)
  command -v java >/dev/null 2>&1 || need+=(openjdk-17-jre-headless)
  if [ ${#need[@]} -gt 0 ]; then
    log "installing Debian packages: ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "${need[@]}" >/dev/null
  fi
  if [ ! -f "$KAFKA_LIBS/.complete" ] || [ "$ROOT/infra/kafka/pom.xml" -nt "$KAFKA_LIBS/.complete" ]; then
    log "resolving Kafka jars with Maven into $KAFKA_LIBS"
    rm -rf "$KAFKA_LIBS"; mkdir -p "$KAFKA_LIBS"
    (cd "$ROOT/infra/kafka" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$KAFKA_LIBS") || die "Maven could not resolve the Kafka jars"
    touch "$KAFKA_LIBS/.complete"
  fi
  log "install: ok"
}

# The server runs as the `postgres` user, which must reach its data folder. When the
# checkout sits under a folder that user cannot traverse (say /root), the data goes to
# a per-checkout folder under /var/tmp instead.
pg_dir() {
  mkdir -p "$LOCAL/pg"
  chmod o+x "$LOCAL" 2>/dev/null || true
  if runuser -u postgres -- test -x "$LOCAL/pg" 2>/dev/null; then
    echo "$LOCAL/pg"
  else
    local alt
    alt=/var/tmp/tinytrail-pg-$(printf '%s' "$LOCAL" | cksum | cut -d' ' -f1)
    mkdir -p "$alt"; echo "$alt"
  fi
}

start_postgres() {
  local bin dir data logf
  bin=$(find_pg_bin); dir=$(pg_dir); data=$dir/data; logf=$dir/postgres.log
  if port_open "$PG_PORT"; then log "postgres already answers on $PG_PORT"; return 0; fi
  chown postgres:postgres "$dir" 2>/dev/null || true
  if [ ! -f "$data/PG_VERSION" ]; then
    log "initdb $data"
    runuser -u postgres -- "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$dir'
max_connections = 300
shared_buffers = 256MB
fsync = on
synchronous_commit = on
max_locks_per_transaction = 256
CONF
  fi
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -l "$logf" -w -t 60 start >/dev/null ||
    { tail -n 30 "$logf" >&2; die "postgres failed to start"; }
  wait_port postgres "$PG_PORT" 30 "$logf" || die "postgres failed to start"
  # The application role and database, created once.
  local psql="psql -h 127.0.0.1 -p $PG_PORT -U postgres -v ON_ERROR_STOP=1 -qtA"
  $psql -c "SELECT 1 FROM pg_roles WHERE rolname='tinytrail'" | grep -q 1 ||
    $psql -c "CREATE ROLE tinytrail LOGIN SUPERUSER PASSWORD 'tinytrail'"
  $psql -c "SELECT 1 FROM pg_database WHERE datname='tinytrail'" | grep -q 1 ||
    $psql -c "CREATE DATABASE tinytrail OWNER tinytrail"
  log "postgres: 127.0.0.1:$PG_PORT"
}

stop_postgres() {
  local bin data
  bin=$(find_pg_bin); data=$(pg_dir)/data
  [ -f "$data/postmaster.pid" ] || return 0
  runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  log "postgres stopped"
}

start_redis() {
  local logf=$LOCAL/redis/redis.log
  if port_open "$REDIS_PORT"; then log "redis already answers on $REDIS_PORT"; return 0; fi
  command -v redis-server >/dev/null || die "redis-server not found; run: infra/services.sh install"
  mkdir -p "$LOCAL/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
    --daemonize yes --pidfile "$LOCAL/redis/redis.pid" --logfile "$logf" --dir "$LOCAL/redis"
  wait_port redis "$REDIS_PORT" 20 "$logf" || die "redis failed to start"
  log "redis: 127.0.0.1:$REDIS_PORT"
}

stop_redis() {
  local pidf=$LOCAL/redis/redis.pid
  [ -f "$pidf" ] || return 0
  kill "$(cat "$pidf")" 2>/dev/null || true
  for _ in $(seq 50); do port_open "$REDIS_PORT" || break; sleep 0.1; done
  rm -f "$pidf"
  log "redis stopped"
}

start_kafka() {
  local props=$KAFKA_HOME/server.properties logf=$KAFKA_HOME/kafka.out
  if port_open "$KAFKA_PORT"; then log "kafka already answers on $KAFKA_PORT"; return 0; fi
  [ -f "$KAFKA_LIBS/.complete" ] || die "Kafka jars missing; run: infra/services.sh install"
  mkdir -p "$KAFKA_HOME/logs" "$KAFKA_HOME/data"
  cat >"$props" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CPORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CPORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CPORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$KAFKA_HOME/data
num.partitions=4
num.network.threads=2
num.io.threads=2
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
PROPS
  local java=(java -Xms256m -Xmx768m -cp "$KAFKA_LIBS/*"
    "-Dlog4j2.configurationFile=$ROOT/infra/kafka/log4j2.properties"
    "-Dkafka.logs.dir=$KAFKA_HOME/logs")
  if [ ! -f "$KAFKA_HOME/data/meta.properties" ]; then
    local cid
    cid=$("${java[@]}" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n 1)
    "${java[@]}" kafka.tools.StorageTool format --standalone -t "$cid" -c "$props" >"$KAFKA_HOME/format.log" 2>&1 ||
      { cat "$KAFKA_HOME/format.log" >&2; die "kafka storage format failed"; }
  fi
  nohup setsid "${java[@]}" kafka.Kafka "$props" >"$logf" 2>&1 &
  echo $! >"$KAFKA_HOME/kafka.pid"
  wait_port kafka "$KAFKA_PORT" 90 "$logf" || die "kafka failed to start"
  log "kafka: 127.0.0.1:$KAFKA_PORT"
}

stop_kafka() {
  local pidf=$KAFKA_HOME/kafka.pid pid
  [ -f "$pidf" ] || return 0
  pid=$(cat "$pidf")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$pidf"
  log "kafka stopped"
}

status() {
  local s rc=0
  for s in "postgres:$PG_PORT" "redis:$REDIS_PORT" "kafka:$KAFKA_PORT"; do
    if port_open "${s#*:}"; then log "${s%%:*}: up on 127.0.0.1:${s#*:}"; else log "${s%%:*}: down"; rc=1; fi
  done
  return $rc
}

print_env() {
  cat <<ENV
export TINYTRAIL_DATABASE_URL=postgresql://tinytrail:tinytrail@127.0.0.1:$PG_PORT/tinytrail
export TINYTRAIL_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
export TINYTRAIL_KAFKA_BOOTSTRAP=127.0.0.1:$KAFKA_PORT
ENV
}

one() { case "$2" in postgres|redis|kafka) "$1_$2" ;; *) die "unknown service: $2" ;; esac; }

case "${1:-}" in
  install) install ;;
  start) start_postgres; start_redis; start_kafka ;;
  stop) stop_kafka; stop_redis; stop_postgres ;;
  status) status ;;
  env) print_env ;;
  start-one) one start "${2:-}" ;;
  stop-one) one stop "${2:-}" ;;
  -h|--help|help|"") usage ;;
  *) usage; exit 2 ;;
esac
