#!/usr/bin/env bash
# The local stack of real services used by the integration tests, the demo and the benchmarks.
#
#   bash scripts/stack.sh up [SERVICE...]      install what is missing, start, wait until ready
#   bash scripts/stack.sh down [SERVICE...]    stop what this script started (pid files)
#   bash scripts/stack.sh status [SERVICE...]  show each service up/down
#   bash scripts/stack.sh install [SERVICE...] only download/install what is missing
#   bash scripts/stack.sh reset [SERVICE...]   stop and wipe the data (topics, objects, tables);
#                                              downloads and the venv stay
#
# SERVICE is one of: kafka s3 pg venv (default: these four), and kafka-secure and registry only
# when named (`down` and `reset` without names stop them too). Everything lives under .stack/ (gitignored;
# RXLAKE_STACK_DIR moves it):
#   Kafka 3.9 (KRaft, broker+controller)  127.0.0.1:$KAFKA_PORT [9092] (controller $KAFKA_CONTROLLER_PORT [9093])
#   S3Proxy 4.x (filesystem-nio2)         http://127.0.0.1:$S3_PORT [9000], bucket rxlake
#   PostgreSQL 15                         127.0.0.1:$PG_PORT [54329], user postgres, trust
#   Python venv with deltalake + pyarrow  .stack/venv
#   kafka-secure: a second Kafka broker   SASL_PLAINTEXT (SCRAM) 127.0.0.1:$KAFKA_SASL_PORT [9094], SSL (client
#     certificate required) $KAFKA_SSL_PORT [9095], SASL_SSL (SCRAM) $KAFKA_SASL_SSL_PORT [9096], controller
#     $KAFKA_SECURE_CONTROLLER_PORT [9097]; CA and certificates made with openssl; client settings in
#     .stack/kafka-secure/client.env
#   registry: Apicurio Registry 3.x     http://127.0.0.1:$REGISTRY_PORT [9098]/apis/ccompat/v7 (Confluent API;
#     management $REGISTRY_MANAGEMENT_PORT [9099]), in-memory; needs Java 21+ (REGISTRY_JAVA)
# A stack in another RXLAKE_STACK_DIR links the downloads (Kafka jars, S3Proxy jar, venv) of
# RXLAKE_STACK_REUSE [<checkout>/.stack] when that folder has them, instead of fetching them again.
# Needs: Java 17 + Maven (installed with apt-get if missing), node_modules (npm ci) for the
# Kafka readiness probe, and as root the Debian package postgresql (installed if missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HERE="$ROOT/scripts/stack"
STACK="${RXLAKE_STACK_DIR:-$ROOT/.stack}"
mkdir -p "$STACK"
STACK="$(cd "$STACK" && pwd)"
RUN="$STACK/run"
# Downloads already made by another stack folder (default: this checkout's .stack) are linked
# into this one instead of fetched again; empty: never.
REUSE="${RXLAKE_STACK_REUSE-$ROOT/.stack}"

KAFKA_VERSION="${KAFKA_VERSION:-3.9.2}"
KAFKA_HOST=127.0.0.1
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms128m -Xmx512m}"

S3PROXY_VERSION="${S3PROXY_VERSION:-4.1.0}"
S3_HOST=127.0.0.1
S3_PORT="${S3_PORT:-9000}"
S3_BUCKET=rxlake
S3_IDENTITY="${AWS_ACCESS_KEY_ID:-rxlake}"
S3_CREDENTIAL="${AWS_SECRET_ACCESS_KEY:-rxlake-secret}"
S3_HEAP="${S3_HEAP:--Xms64m -Xmx1g}"

PG_PORT="${PG_PORT:-54329}"
PG_HOST=127.0.0.1

START_TIMEOUT="${STACK_START_TIMEOUT:-120}"
MVN=(mvn -B -ntp -Dstyle.color=never)

export DEBIAN_FRONTEND=noninteractive

log() { printf '[stack] %s\n' "$*"; }
die() { printf '[stack] ERROR: %s\n' "$*" >&2; exit 1; }

# Fails loudly with the tail of a log file.
die_with_log() {
  local msg="$1" file="$2"
  printf '[stack] ERROR: %s\n' "$msg" >&2
  if [ -f "$file" ]; then
    printf '[stack] ---- last lines of %s ----\n' "$file" >&2
    tail -n 40 "$file" >&2 || true
    printf '[stack] ----\n' >&2
  fi
  exit 1
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# The port variables named (default: those of the default services): whole numbers 1-65535, all
# different.
check_ports() {
  local name value seen=" " names=("$@")
  [ "${#names[@]}" -gt 0 ] || names=(KAFKA_PORT KAFKA_CONTROLLER_PORT S3_PORT PG_PORT)
  for name in "${names[@]}"; do
    value="${!name}"
    [[ "$value" =~ ^[0-9]+$ ]] && [ "$value" -ge 1 ] && [ "$value" -le 65535 ] \
      || die "$name=\"$value\" is not a TCP port (1-65535)"
    case "$seen" in *" $value "*) die "$name=$value: the port variables ${names[*]} must differ" ;; esac
    seen="$seen$value "
  done
}

# A service this stack folder already runs must run on the port asked for now: a second stack
# takes another RXLAKE_STACK_DIR. $1 service, $2 port file, $3 variable, $4 port asked for.
same_port() {
  local name=$1 file=$2 var=$3 want=$4 had
  had="$(cat "$file" 2>/dev/null || true)"
  [ -z "$had" ] || [ "$had" = "$want" ] && return 0
  die "$name: this stack ($STACK) already runs it on port $had, not $var=$want: 'bash scripts/stack.sh down $name' first, or give the second stack its own RXLAKE_STACK_DIR"
}

# Links a download ($1, a path below the stack folder) from the RXLAKE_STACK_REUSE folder when
# this stack has none and that one has it ($2: a file that shows the download is complete).
reuse_download() {
  local rel=$1 marker=${2:-}
  [ -n "$REUSE" ] && [ -d "$REUSE" ] && [ ! -e "$STACK/$rel" ] || return 1
  local from
  from="$(cd "$REUSE" && pwd)"
  [ "$from" != "$STACK" ] && [ -e "$from/$rel${marker:+/$marker}" ] || return 1
  rm -f "$STACK/$rel" # a link left dangling by a removed folder
  mkdir -p "$(dirname "$STACK/$rel")"
  ln -s "$from/$rel" "$STACK/$rel"
  log "linked $STACK/$rel -> $from/$rel (already downloaded there; RXLAKE_STACK_REUSE)"
}

# True if the pid file names a live process that this stack started (its command line mentions
# the stack directory), so a recycled pid is never taken for ours.
# A pid file's process is alive and ours: its command line names our stack folder (or `$2`,
# for PostgreSQL whose cluster may live outside it).
pid_alive() {
  local f="$1" dir="${2:-$STACK}"
  [ -f "$f" ] || return 1
  local pid
  pid="$(cat "$f" 2>/dev/null || true)"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ -r "/proc/$pid/cmdline" ] || return 0
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$dir"
}

# The status line of a service this script starts: NAME PIDFILE READY-FUNCTION UP-TEXT LOG
# [PID-DIR]. Up (started here, or answering though another checkout started it), starting or
# unresponsive (exit 1), or down (exit 1).
service_status() {
  local name="$1" pidfile="$2" ready="$3" up="$4" logfile="$5" dir="${6:-$STACK}"
  if pid_alive "$pidfile" "$dir" && "$ready"; then
    log "$name: up    $up (pid $(cat "$pidfile")), log $logfile"
  elif pid_alive "$pidfile" "$dir"; then
    log "$name: starting/unresponsive (pid $(cat "$pidfile")), log $logfile"; return 1
  elif "$ready"; then
    log "$name: up    $up (not started by this checkout)"
  else
    log "$name: down"; return 1
  fi
}


now() { date +%s; }

# Waits until the readiness check "$2" succeeds; dies with the tail of log "$3" when the process
# (the rest of the arguments, as pid_alive takes them) exits or START_TIMEOUT passes. Polls every
# "$4" seconds; leaves the seconds waited in WAITED.
wait_ready() {
  local name=$1 ready=$2 logfile=$3 interval=$4 t0
  shift 4
  t0="$(now)"
  until "$ready"; do
    pid_alive "$@" || die_with_log "$name: process exited during start-up" "$logfile"
    [ $(($(now) - t0)) -lt "$START_TIMEOUT" ] || die_with_log "$name: not ready after ${START_TIMEOUT}s" "$logfile"
    sleep "$interval"
  done
  WAITED=$(($(now) - t0))
}

apt_updated=0
apt_install() {
  [ "$(id -u)" = 0 ] || die "need root to apt-get install $* (or install it by hand)"
  mkdir -p "$STACK"
  if [ "$apt_updated" = 0 ]; then
    log "apt-get update"
    run_logged apt "$STACK/apt.log" apt-get update || die_with_log "apt-get update failed" "$STACK/apt.log"
    apt_updated=1
  fi
  log "apt-get install $*"
  run_logged apt "$STACK/apt.log" apt-get install -y --no-install-recommends "$@" \
    || die_with_log "apt-get install $* failed" "$STACK/apt.log"
}

need_java() {
  if ! command -v java >/dev/null || ! java -version 2>&1 | grep -q 'version "\(1[7-9]\|2[0-9]\)'; then
    apt_install openjdk-17-jre-headless
  fi
  command -v mvn >/dev/null || apt_install maven
}

# Runs a long step with its output in a log file, printing a progress line every 15 s.
run_logged() {
  local label="$1" logfile="$2"
  shift 2
  "$@" >"$logfile" 2>&1 &
  local pid=$! t0 last
  t0="$(now)"
  last="$t0"
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    if [ $(($(now) - last)) -ge 15 ]; then
      last="$(now)"
      log "$label: still working ($((last - t0))s): $(tail -n1 "$logfile" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g' | cut -c1-100)"
    fi
  done
  wait "$pid"
}

# Starts a command detached from this shell, logging to $2, pid into $1.
spawn() {
  local pidfile="$1" logfile="$2"
  shift 2
  mkdir -p "$RUN"
  : >"$logfile"
  nohup setsid "$@" >>"$logfile" 2>&1 </dev/null &
  echo $! >"$pidfile"
}

# Stops the process recorded in a pid file (TERM, then KILL after a grace period).
stop_pidfile() {
  local name="$1" pidfile="$2" grace="${3:-20}" dir="${4:-$STACK}"
  if ! pid_alive "$pidfile" "$dir"; then
    rm -f "$pidfile"
    log "$name: not running (by this script)"
    return 0
  fi
  local pid
  pid="$(cat "$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  local i=0
  while kill -0 "$pid" 2>/dev/null; do
    i=$((i + 1))
    if [ "$i" -gt $((grace * 10)) ]; then
      log "$name: still running after ${grace}s, killing $pid"
      kill -KILL "$pid" 2>/dev/null || true
      break
    fi
    sleep 0.1
  done
  rm -f "$pidfile"
  log "$name: stopped (pid $pid)"
}

# ---------------------------------------------------------------------------------------------
# Kafka
# ---------------------------------------------------------------------------------------------
KAFKA_DIR="$STACK/kafka"
KAFKA_LIBS="$KAFKA_DIR/libs-$KAFKA_VERSION"
KAFKA_DATA="$KAFKA_DIR/data"
KAFKA_LOG="$KAFKA_DIR/kafka.log"
KAFKA_PID="$RUN/kafka.pid"
KAFKA_PORTS="$RUN/kafka.port"

kafka_install() {
  [ -f "$KAFKA_LIBS/.complete" ] && return 0
  reuse_download "kafka/libs-$KAFKA_VERSION" .complete && return 0
  need_java
  log "kafka: resolving org.apache.kafka:kafka_2.13:$KAFKA_VERSION + slf4j-reload4j from Maven Central (first run only)"
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS"
  run_logged kafka "$STACK/maven-kafka.log" "${MVN[@]}" -f "$HERE/kafka-pom.xml" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS" \
    || die_with_log "kafka: Maven could not resolve the broker's classpath" "$STACK/maven-kafka.log"
  ls "$KAFKA_LIBS"/kafka_2.13-"$KAFKA_VERSION".jar >/dev/null 2>&1 || die "kafka: kafka_2.13-$KAFKA_VERSION.jar missing after Maven"
  touch "$KAFKA_LIBS/.complete"
  log "kafka: $(find "$KAFKA_LIBS" -name '*.jar' | wc -l) jars in $KAFKA_LIBS"
}

kafka_configure() {
  mkdir -p "$KAFKA_DATA"
  sed -e "s#@HOST@#$KAFKA_HOST#g" -e "s#@PORT@#$KAFKA_PORT#g" \
      -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" -e "s#@DATA@#$KAFKA_DATA#g" \
      "$HERE/kafka-server.properties" >"$KAFKA_DIR/server.properties"
  cp "$HERE/kafka-log4j.properties" "$KAFKA_DIR/log4j.properties"
  if [ ! -f "$KAFKA_DATA/meta.properties" ]; then
    local cid
    cid="$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    [ -n "$cid" ] || die "kafka: could not generate a cluster id"
    log "kafka: formatting storage in $KAFKA_DATA (cluster $cid)"
    java -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool \
      format -c "$KAFKA_DIR/server.properties" -t "$cid" --ignore-formatted >"$KAFKA_DIR/format.log" 2>&1 \
      || die_with_log "kafka: storage format failed" "$KAFKA_DIR/format.log"
  fi
}

kafka_ready() {
  if [ -f "$ROOT/node_modules/kafkajs/package.json" ]; then
    (cd "$ROOT" && node "$HERE/kafka-ready.js" "$KAFKA_HOST:$KAFKA_PORT") >/dev/null 2>&1
  else
    port_open "$KAFKA_HOST" "$KAFKA_PORT" && grep -q 'Kafka Server started' "$KAFKA_LOG" 2>/dev/null
  fi
}

kafka_up() {
  pid_alive "$KAFKA_PID" && same_port kafka "$KAFKA_PORTS" KAFKA_PORT "$KAFKA_PORT"
  if pid_alive "$KAFKA_PID" && kafka_ready; then
    log "kafka: already running (pid $(cat "$KAFKA_PID")) on $KAFKA_HOST:$KAFKA_PORT"
    echo "$KAFKA_PORT" >"$KAFKA_PORTS" # a stack started before ports were recorded
    return 0
  fi
  if ! pid_alive "$KAFKA_PID"; then
    if port_open "$KAFKA_HOST" "$KAFKA_PORT"; then
      # Another checkout's stack (or CI's) may already serve this port: reuse it if it answers.
      kafka_ready && { log "kafka: $KAFKA_HOST:$KAFKA_PORT already served by a broker this checkout did not start; using it"; return 0; }
      die "kafka: $KAFKA_HOST:$KAFKA_PORT is taken by a process this script did not start (and it is no Kafka broker): set KAFKA_PORT (and KAFKA_CONTROLLER_PORT) to free ports, e.g. KAFKA_PORT=19092 KAFKA_CONTROLLER_PORT=19093"
    fi
    port_open "$KAFKA_HOST" "$KAFKA_CONTROLLER_PORT" && die "kafka: $KAFKA_HOST:$KAFKA_CONTROLLER_PORT is taken by a process this script did not start: set KAFKA_CONTROLLER_PORT to a free port"
    kafka_install
    kafka_configure
    log "kafka: starting"
    spawn "$KAFKA_PID" "$KAFKA_LOG" java $KAFKA_HEAP -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$KAFKA_DIR/log4j.properties" -Dkafka.logs.dir="$KAFKA_DIR" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KAFKA_DIR/server.properties"
    echo "$KAFKA_PORT" >"$KAFKA_PORTS"
  fi
  wait_ready kafka kafka_ready "$KAFKA_LOG" 0.5 "$KAFKA_PID"
  log "kafka: ready on $KAFKA_HOST:$KAFKA_PORT (pid $(cat "$KAFKA_PID"), ${WAITED}s), log $KAFKA_LOG"
}

kafka_down() { stop_pidfile kafka "$KAFKA_PID" 30 && rm -f "$KAFKA_PORTS"; }

kafka_status() { service_status kafka "$KAFKA_PID" kafka_ready "$KAFKA_HOST:$KAFKA_PORT" "$KAFKA_LOG"; }

# ---------------------------------------------------------------------------------------------
# Kafka with secure listeners, only when asked (`up kafka-secure`): a second single-node KRaft
# broker from the same jars with SASL_PLAINTEXT (SCRAM), SSL (client certificates required) and
# SASL_SSL (SCRAM) on loopback; a CA and the broker's and a client's certificates made here with
# openssl; SCRAM users added with the broker's own tools. Clients find everything they need
# (user, password, CA, client certificate and key) in .stack/kafka-secure/client.env.
# ---------------------------------------------------------------------------------------------
KAFKA_SASL_PORT="${KAFKA_SASL_PORT:-9094}"
KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-9095}"
KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-9096}"
KAFKA_SECURE_CONTROLLER_PORT="${KAFKA_SECURE_CONTROLLER_PORT:-9097}"
KAFKA_SECURE_USER="${KAFKA_SECURE_USER:-rxlake}"
KAFKA_SECURE_HEAP="${KAFKA_SECURE_HEAP:--Xms64m -Xmx256m}"
KS_DIR="$STACK/kafka-secure"
KS_TLS="$KS_DIR/tls"
KS_DATA="$KS_DIR/data"
KS_LOG="$KS_DIR/kafka.log"
KS_SECRETS="$KS_DIR/secrets"
KS_CLIENT="$KS_DIR/client.env"
KS_ADMIN="$KS_DIR/admin.properties"
KS_USERS="$KS_DIR/users.applied"
KS_PID="$RUN/kafka-secure.pid"
KS_PORTS="$RUN/kafka-secure.port"
KS_BROKER_USER=broker
KS_PORT_VARS=(KAFKA_SASL_PORT KAFKA_SSL_PORT KAFKA_SASL_SSL_PORT KAFKA_SECURE_CONTROLLER_PORT)

ks_ports() { echo "$KAFKA_SASL_PORT,$KAFKA_SSL_PORT,$KAFKA_SASL_SSL_PORT,$KAFKA_SECURE_CONTROLLER_PORT"; }

# The stack's secrets, made once (random): the broker's SCRAM password, the client's (unless
# KAFKA_SECURE_PASSWORD sets it), and the password of the client's key.
ks_secrets() {
  mkdir -p "$KS_DIR"
  chmod 700 "$KS_DIR"
  if [ ! -s "$KS_SECRETS" ]; then
    command -v openssl >/dev/null || apt_install openssl
    (
      umask 077
      printf 'BROKER_PASSWORD=%s\nCLIENT_PASSWORD=%s\nCLIENT_KEY_PASSWORD=%s\n' \
        "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" "$(openssl rand -hex 16)" >"$KS_SECRETS"
    )
    rm -rf "$KS_TLS" # keys encrypted with other passwords
  fi
  KS_BROKER_PASSWORD="$(sed -n 's/^BROKER_PASSWORD=//p' "$KS_SECRETS")"
  KS_CLIENT_PASSWORD="${KAFKA_SECURE_PASSWORD:-$(sed -n 's/^CLIENT_PASSWORD=//p' "$KS_SECRETS")}"
  KS_CLIENT_KEY_PASSWORD="$(sed -n 's/^CLIENT_KEY_PASSWORD=//p' "$KS_SECRETS")"
  [ -n "$KS_BROKER_PASSWORD" ] && [ -n "$KS_CLIENT_PASSWORD" ] && [ -n "$KS_CLIENT_KEY_PASSWORD" ] \
    || die "kafka-secure: $KS_SECRETS is incomplete: 'bash scripts/stack.sh reset kafka-secure' makes new secrets"
  case "$KS_CLIENT_PASSWORD" in *[!A-Za-z0-9._~+-]*) die "kafka-secure: KAFKA_SECURE_PASSWORD may hold only letters, digits and . _ ~ + -" ;; esac
  case "$KAFKA_SECURE_USER" in *[!A-Za-z0-9._-]* | '') die "kafka-secure: KAFKA_SECURE_USER=\"$KAFKA_SECURE_USER\" may hold only letters, digits and . _ -" ;; esac
}

# A CA, the broker's certificate (for 127.0.0.1 and localhost) and a client certificate signed by
# it; private keys as PKCS#8 PEM (what Kafka's PEM key store and Node's TLS both read).
ks_certificates() {
  [ -f "$KS_TLS/.complete" ] && return 0
  command -v openssl >/dev/null || apt_install openssl
  log "kafka-secure: making a CA and certificates with openssl in $KS_TLS"
  rm -rf "$KS_TLS"
  mkdir -p "$KS_TLS"
  chmod 700 "$KS_TLS"
  (
    set -e
    cd "$KS_TLS"
    umask 077
    ec=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
    openssl req -x509 "${ec[@]}" -nodes -keyout ca.key -out ca.pem -days 3650 -subj "/CN=rxlake local stack CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n' >broker.ext
    openssl req -new "${ec[@]}" -nodes -keyout broker.plain.key -out broker.csr -subj "/CN=localhost"
    openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out broker.crt -days 3650 -extfile broker.ext
    # Kafka's PEM key store on Java 17 reads no PBES2-encrypted key: the broker's key stays plain
    # (in this 0700 folder); the client's is encrypted.
    openssl pkcs8 -topk8 -nocrypt -in broker.plain.key -out broker.key
    cat broker.key broker.crt ca.pem >broker.pem
    printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >client.ext
    openssl req -new "${ec[@]}" -nodes -keyout client.plain.key -out client.csr -subj "/CN=$KAFKA_SECURE_USER"
    openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 3650 -extfile client.ext
    openssl pkcs8 -topk8 -v2 aes-256-cbc -in client.plain.key -out client.key -passout "pass:$KS_CLIENT_KEY_PASSWORD"
    rm -f broker.plain.key client.plain.key broker.csr client.csr
    chmod 644 ca.pem broker.crt client.pem
  ) >"$KS_DIR/openssl.log" 2>&1 || die_with_log "kafka-secure: openssl could not make the certificates" "$KS_DIR/openssl.log"
  touch "$KS_TLS/.complete"
}

# What a client of this broker needs, one KEY=value a line, named like the jobs' variables; and
# the broker user's client settings for the broker's own tools.
ks_client_env() {
  (
    umask 077
    cat >"$KS_CLIENT" <<EOF
# Clients of the stack's secure Kafka broker (bash scripts/stack.sh up kafka-secure); one
# KEY=value a line. SASL_PLAINTEXT and SASL_SSL authenticate with SCRAM (SHA-512 or SHA-256),
# SSL with the client certificate (required).
KAFKA_SASL_PLAINTEXT_SERVERS=$KAFKA_HOST:$KAFKA_SASL_PORT
KAFKA_SSL_SERVERS=$KAFKA_HOST:$KAFKA_SSL_PORT
KAFKA_SASL_SSL_SERVERS=$KAFKA_HOST:$KAFKA_SASL_SSL_PORT
KAFKA_SASL_MECHANISM=SCRAM-SHA-512
KAFKA_SASL_USERNAME=$KAFKA_SECURE_USER
KAFKA_SASL_PASSWORD=$KS_CLIENT_PASSWORD
KAFKA_SSL_CA_LOCATION=$KS_TLS/ca.pem
KAFKA_SSL_CERTIFICATE_LOCATION=$KS_TLS/client.pem
KAFKA_SSL_KEY_LOCATION=$KS_TLS/client.key
KAFKA_SSL_KEY_PASSWORD=$KS_CLIENT_KEY_PASSWORD
EOF
    cat >"$KS_ADMIN" <<EOF
security.protocol=SASL_PLAINTEXT
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="$KS_BROKER_USER" password="$KS_BROKER_PASSWORD";
EOF
  )
}

ks_configure() {
  mkdir -p "$KS_DATA"
  (
    umask 077
    sed -e "s#@HOST@#$KAFKA_HOST#g" -e "s#@SASL_PORT@#$KAFKA_SASL_PORT#g" -e "s#@SSL_PORT@#$KAFKA_SSL_PORT#g" \
      -e "s#@SASL_SSL_PORT@#$KAFKA_SASL_SSL_PORT#g" -e "s#@CONTROLLER_PORT@#$KAFKA_SECURE_CONTROLLER_PORT#g" \
      -e "s#@DATA@#$KS_DATA#g" -e "s#@TLS@#$KS_TLS#g" -e "s#@BROKER_USER@#$KS_BROKER_USER#g" \
      -e "s#@BROKER_PASSWORD@#$KS_BROKER_PASSWORD#g" \
      "$HERE/kafka-secure.properties" >"$KS_DIR/server.properties"
  )
  cp "$HERE/kafka-log4j.properties" "$KS_DIR/log4j.properties"
  if [ ! -f "$KS_DATA/meta.properties" ]; then
    local cid mech scram=()
    cid="$(java -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)"
    [ -n "$cid" ] || die "kafka-secure: could not generate a cluster id"
    log "kafka-secure: formatting storage in $KS_DATA (cluster $cid) with the SCRAM users $KS_BROKER_USER and $KAFKA_SECURE_USER"
    for mech in SCRAM-SHA-512 SCRAM-SHA-256; do
      scram+=(--add-scram "$mech=[name=$KS_BROKER_USER,password=$KS_BROKER_PASSWORD]" --add-scram "$mech=[name=$KAFKA_SECURE_USER,password=$KS_CLIENT_PASSWORD]")
    done
    java -Dlog4j.configuration="file:$KS_DIR/log4j.properties" -cp "$KAFKA_LIBS/*" kafka.tools.StorageTool \
      format -c "$KS_DIR/server.properties" -t "$cid" --ignore-formatted "${scram[@]}" >"$KS_DIR/format.log" 2>&1 \
      || die_with_log "kafka-secure: storage format failed" "$KS_DIR/format.log"
    (umask 077 && ks_user_stamp >"$KS_USERS")
  fi
}

# The client user and (a checksum of) its password, as the broker has them.
ks_user_stamp() { printf '%s %s\n' "$KAFKA_SECURE_USER" "$(printf '%s' "$KS_CLIENT_PASSWORD" | cksum)"; }

# The client user with the current password (KAFKA_SECURE_USER, KAFKA_SECURE_PASSWORD) when the
# broker has another: kafka-configs (ConfigCommand) over SASL_PLAINTEXT as the broker's user.
ks_users() {
  [ "$(cat "$KS_USERS" 2>/dev/null || true)" = "$(ks_user_stamp)" ] && return 0
  log "kafka-secure: setting the SCRAM credentials of $KAFKA_SECURE_USER (kafka-configs)"
  local mech
  # One mechanism per request (the broker refuses two credentials of one user in one request).
  for mech in SCRAM-SHA-512 SCRAM-SHA-256; do
    java -Dlog4j.configuration="file:$KS_DIR/log4j.properties" -cp "$KAFKA_LIBS/*" kafka.admin.ConfigCommand \
      --bootstrap-server "$KAFKA_HOST:$KAFKA_SASL_PORT" --command-config "$KS_ADMIN" \
      --alter --entity-type users --entity-name "$KAFKA_SECURE_USER" \
      --add-config "$mech=[password=$KS_CLIENT_PASSWORD]" >"$KS_DIR/users.log" 2>&1 \
      || die_with_log "kafka-secure: kafka-configs could not set the $mech credentials of $KAFKA_SECURE_USER" "$KS_DIR/users.log"
  done
  (umask 077 && ks_user_stamp >"$KS_USERS")
}

# Ready: every listener answers a metadata request made with the client's settings (SCRAM over
# SASL_PLAINTEXT and SASL_SSL, the client certificate over SSL, the stack's CA).
ks_ready() {
  if [ -f "$ROOT/node_modules/kafkajs/package.json" ]; then
    (cd "$ROOT" && node "$HERE/kafka-ready.js" --secure "$KS_CLIENT") >/dev/null 2>&1
  else
    port_open "$KAFKA_HOST" "$KAFKA_SASL_SSL_PORT" && grep -q 'Kafka Server started' "$KS_LOG" 2>/dev/null
  fi
}

# The broker has started (what kafka-configs needs).
ks_started() { port_open "$KAFKA_HOST" "$KAFKA_SASL_PORT" && grep -q 'Kafka Server started' "$KS_LOG" 2>/dev/null; }

# The client settings of a secure broker that another stack folder (another checkout, e.g. a CI
# clone) started on these very ports: its process names its server.properties, whose folder
# holds its client.env. Prints that file's path; fails if there is no such broker.
ks_foreign_client_env() {
  local cmd props dir
  for cmd in /proc/[0-9]*/cmdline; do
    props="$(tr '\0' '\n' <"$cmd" 2>/dev/null | grep -m1 '/kafka-secure/server.properties$' || true)"
    [ -n "$props" ] && [ -r "$props" ] || continue
    grep -qx "listeners=SASL_PLAINTEXT://$KAFKA_HOST:$KAFKA_SASL_PORT,SSL://$KAFKA_HOST:$KAFKA_SSL_PORT,SASL_SSL://$KAFKA_HOST:$KAFKA_SASL_SSL_PORT,.*" "$props" || continue
    dir="$(dirname "$props")"
    [ "$dir" != "$KS_DIR" ] && [ -r "$dir/client.env" ] || continue
    echo "$dir/client.env"
    return 0
  done
  return 1
}

kafka-secure_install() { kafka_install; }

kafka-secure_up() {
  pid_alive "$KS_PID" && same_port kafka-secure "$KS_PORTS" "${KS_PORT_VARS[*]}" "$(ks_ports)"
  ks_secrets
  if pid_alive "$KS_PID"; then
    ks_client_env
  else
    local var foreign
    for var in "${KS_PORT_VARS[@]}"; do
      port_open "$KAFKA_HOST" "${!var}" || continue
      # Another checkout's secure broker on these ports: use it with its client settings.
      if foreign="$(ks_foreign_client_env)"; then
        (umask 077 && cp "$foreign" "$KS_CLIENT")
        ks_ready || die "kafka-secure: the secure broker on $KAFKA_HOST:$KAFKA_SASL_PORT (another checkout's) does not accept its own client settings ($foreign): set ${KS_PORT_VARS[*]} to free ports"
        log "kafka-secure: SASL_PLAINTEXT $KAFKA_HOST:$KAFKA_SASL_PORT, SSL :$KAFKA_SSL_PORT, SASL_SSL :$KAFKA_SASL_SSL_PORT already served by a secure broker this checkout did not start; using it (client settings from $foreign)"
        return 0
      fi
      die "kafka-secure: $KAFKA_HOST:${!var} is taken by a process this script did not start: set $var (${KS_PORT_VARS[*]}) to free ports, e.g. KAFKA_SASL_PORT=19094 KAFKA_SSL_PORT=19095 KAFKA_SASL_SSL_PORT=19096 KAFKA_SECURE_CONTROLLER_PORT=19097"
    done
    kafka_install
    ks_certificates
    ks_client_env
    ks_configure
    log "kafka-secure: starting"
    spawn "$KS_PID" "$KS_LOG" java $KAFKA_SECURE_HEAP -server -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$KS_DIR/log4j.properties" -Dkafka.logs.dir="$KS_DIR" \
      -cp "$KAFKA_LIBS/*" kafka.Kafka "$KS_DIR/server.properties"
    ks_ports >"$KS_PORTS"
  fi
  wait_ready kafka-secure ks_started "$KS_LOG" 0.3 "$KS_PID"
  ks_users
  wait_ready kafka-secure ks_ready "$KS_LOG" 0.3 "$KS_PID"
  log "kafka-secure: ready (pid $(cat "$KS_PID")): SASL_PLAINTEXT $KAFKA_HOST:$KAFKA_SASL_PORT, SSL $KAFKA_HOST:$KAFKA_SSL_PORT, SASL_SSL $KAFKA_HOST:$KAFKA_SASL_SSL_PORT; client settings $KS_CLIENT, log $KS_LOG"
}

kafka-secure_down() { stop_pidfile kafka-secure "$KS_PID" 30 && rm -f "$KS_PORTS"; }

ks_ready_here() { [ -f "$KS_CLIENT" ] && ks_ready; }
kafka-secure_status() { service_status kafka-secure "$KS_PID" ks_ready_here "SASL_PLAINTEXT $KAFKA_HOST:$KAFKA_SASL_PORT, SSL :$KAFKA_SSL_PORT, SASL_SSL :$KAFKA_SASL_SSL_PORT, client settings $KS_CLIENT" "$KS_LOG"; }

# ---------------------------------------------------------------------------------------------
# Schema Registry, only when asked (`up registry`): Apicurio Registry (Confluent-compatible API
# under /apis/ccompat/v7) from its distribution on Maven Central
# (io.apicurio:apicurio-registry-app:<v>:tar.gz:all, a Quarkus application), in-memory storage.
# It needs Java 21 or newer (REGISTRY_JAVA, or the first such JVM under /usr/lib/jvm).
# ---------------------------------------------------------------------------------------------
APICURIO_VERSION="${APICURIO_VERSION:-3.3.3}"
REGISTRY_PORT="${REGISTRY_PORT:-9098}"
REGISTRY_MANAGEMENT_PORT="${REGISTRY_MANAGEMENT_PORT:-9099}"
REGISTRY_HEAP="${REGISTRY_HEAP:--Xms64m -Xmx384m}"
REG_DIR="$STACK/registry"
REG_APP="$REG_DIR/app-$APICURIO_VERSION"
REG_LOG="$REG_DIR/registry.log"
REG_PID="$RUN/registry.pid"
REG_PORTS="$RUN/registry.port"
REG_URL="http://$KAFKA_HOST:$REGISTRY_PORT/apis/ccompat/v7"
REG_PORT_VARS=(REGISTRY_PORT REGISTRY_MANAGEMENT_PORT)

# A java of version 21 or newer: REGISTRY_JAVA, the one on PATH, or one under /usr/lib/jvm.
registry_java() {
  local j major
  for j in "${REGISTRY_JAVA:-}" "$(command -v java || true)" /usr/lib/jvm/*/bin/java; do
    [ -n "$j" ] && [ -x "$j" ] || continue
    major="$("$j" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
    [ -n "$major" ] && [ "$major" -ge 21 ] && { echo "$j"; return 0; }
  done
  return 1
}

registry_install() {
  [ -f "$REG_APP/.complete" ] && return 0
  reuse_download "registry/app-$APICURIO_VERSION" .complete && return 0
  need_java
  log "registry: fetching io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all from Maven Central (first run only, ~160 MB)"
  rm -rf "$REG_APP" "$REG_DIR/download"
  mkdir -p "$REG_APP"
  run_logged registry "$STACK/maven-registry.log" "${MVN[@]}" -f "$HERE/kafka-pom.xml" dependency:copy \
    -Dartifact="io.apicurio:apicurio-registry-app:$APICURIO_VERSION:tar.gz:all" -DoutputDirectory="$REG_DIR/download" \
    || die_with_log "registry: Maven could not fetch Apicurio Registry $APICURIO_VERSION" "$STACK/maven-registry.log"
  tar -xzf "$REG_DIR/download/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz" -C "$REG_APP" \
    || die "registry: could not unpack $REG_DIR/download/apicurio-registry-app-$APICURIO_VERSION-all.tar.gz"
  rm -rf "$REG_DIR/download"
  [ -f "$REG_APP/quarkus-run.jar" ] || die "registry: quarkus-run.jar missing from the Apicurio distribution"
  touch "$REG_APP/.complete"
}

# Ready: the Confluent-compatible API answers.
registry_ready() { curl -sf -o /dev/null --max-time 2 "$REG_URL/subjects"; }

registry_up() {
  pid_alive "$REG_PID" && same_port registry "$REG_PORTS" "${REG_PORT_VARS[*]}" "$REGISTRY_PORT,$REGISTRY_MANAGEMENT_PORT"
  if pid_alive "$REG_PID" && registry_ready; then
    log "registry: already running (pid $(cat "$REG_PID")) at $REG_URL"
    return 0
  fi
  if ! pid_alive "$REG_PID"; then
    if port_open "$KAFKA_HOST" "$REGISTRY_PORT"; then
      registry_ready && { log "registry: $REG_URL already served by a registry this checkout did not start; using it"; return 0; }
      die "registry: $KAFKA_HOST:$REGISTRY_PORT is taken by a process this script did not start (and it is no schema registry): set REGISTRY_PORT (and REGISTRY_MANAGEMENT_PORT) to free ports, e.g. REGISTRY_PORT=19098 REGISTRY_MANAGEMENT_PORT=19099"
    fi
    port_open "$KAFKA_HOST" "$REGISTRY_MANAGEMENT_PORT" && die "registry: $KAFKA_HOST:$REGISTRY_MANAGEMENT_PORT is taken by a process this script did not start: set REGISTRY_MANAGEMENT_PORT to a free port"
    registry_install
    local java
    java="$(registry_java)" || die "registry: Apicurio Registry $APICURIO_VERSION needs Java 21 or newer and none was found (java on PATH, /usr/lib/jvm/*): install one (e.g. apt-get install openjdk-21-jre-headless where Debian has it) and set REGISTRY_JAVA to its bin/java"
    log "registry: starting Apicurio Registry $APICURIO_VERSION with $java"
    spawn "$REG_PID" "$REG_LOG" "$java" $REGISTRY_HEAP -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:+ExitOnOutOfMemoryError \
      -Dquarkus.http.host="$KAFKA_HOST" -Dquarkus.http.port="$REGISTRY_PORT" \
      -Dquarkus.management.host="$KAFKA_HOST" -Dquarkus.management.port="$REGISTRY_MANAGEMENT_PORT" \
      -Dapicurio.datasource.jdbc.initial-size=2 -Dapicurio.datasource.jdbc.min-size=2 -Dapicurio.datasource.jdbc.max-size=10 \
      -Dquarkus.log.console.json=false -Dquarkus.http.access-log.enabled=false \
      -Dregistry.stack.dir="$STACK" -jar "$REG_APP/quarkus-run.jar"
    echo "$REGISTRY_PORT,$REGISTRY_MANAGEMENT_PORT" >"$REG_PORTS"
  fi
  wait_ready registry registry_ready "$REG_LOG" 0.3 "$REG_PID"
  log "registry: ready at $REG_URL (pid $(cat "$REG_PID"), ${WAITED}s; in-memory storage), log $REG_LOG"
}

registry_down() { stop_pidfile registry "$REG_PID" 20 && rm -f "$REG_PORTS"; }

registry_status() { service_status registry "$REG_PID" registry_ready "$REG_URL" "$REG_LOG"; }

# ---------------------------------------------------------------------------------------------
# S3 (S3Proxy, filesystem-nio2 store: conditional PUT If-None-Match:* claims the key atomically)
# ---------------------------------------------------------------------------------------------
S3_DIR="$STACK/s3"
S3_JAR="$S3_DIR/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar"
S3_DATA="$S3_DIR/data"
S3_LOG="$S3_DIR/s3proxy.log"
S3_PID="$RUN/s3.pid"
S3_PORTS="$RUN/s3.port"
S3_ENDPOINT="http://$S3_HOST:$S3_PORT"

s3_install() {
  [ -f "$S3_JAR" ] && return 0
  reuse_download "s3/$(basename "$S3_JAR")" && return 0
  need_java
  log "s3: fetching org.gaul:s3proxy:$S3PROXY_VERSION:jar-with-dependencies from Maven Central (first run only)"
  mkdir -p "$S3_DIR"
  run_logged s3 "$STACK/maven-s3proxy.log" "${MVN[@]}" -f "$HERE/kafka-pom.xml" dependency:copy \
    -Dartifact="org.gaul:s3proxy:$S3PROXY_VERSION:jar:jar-with-dependencies" -DoutputDirectory="$S3_DIR.tmp" \
    || die_with_log "s3: Maven could not fetch S3Proxy $S3PROXY_VERSION" "$STACK/maven-s3proxy.log"
  mv "$S3_DIR.tmp/s3proxy-$S3PROXY_VERSION-jar-with-dependencies.jar" "$S3_JAR"
  rm -rf "$S3_DIR.tmp"
}

s3_configure() {
  # A bucket of the filesystem store is a folder of its base directory.
  mkdir -p "$S3_DATA/$S3_BUCKET"
  (
    umask 077
    cat >"$S3_DIR/s3proxy.properties" <<EOP
s3proxy.endpoint=$S3_ENDPOINT
s3proxy.authorization=aws-v2-or-v4
s3proxy.identity=$S3_IDENTITY
s3proxy.credential=$S3_CREDENTIAL
jclouds.provider=filesystem-nio2
jclouds.filesystem.basedir=$S3_DATA
EOP
  )
}

# HTTP status of a SigV4-signed request with the stack's credentials (curl >= 7.75).
s3_signed() {
  curl -s -o /dev/null -w '%{http_code}' --max-time 5 --aws-sigv4 "aws:amz:us-east-1:s3" \
    --user "$S3_IDENTITY:$S3_CREDENTIAL" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@" 2>/dev/null || true
}

# The bucket answers a signed HEAD (checks credentials too); created through the API if absent.
s3_bucket() {
  local code
  code="$(s3_signed -I "$S3_ENDPOINT/$S3_BUCKET")"
  if [ "$code" = 404 ]; then
    s3_signed -X PUT "$S3_ENDPOINT/$S3_BUCKET" >/dev/null
    code="$(s3_signed -I "$S3_ENDPOINT/$S3_BUCKET")"
  fi
  [ "$code" = 200 ] || die_with_log "s3: signed HEAD /$S3_BUCKET answered '$code' for identity $S3_IDENTITY (credentials changed? 'stack.sh down s3' then up)" "$S3_LOG"
}

# Answers an anonymous GET with an S3 error document once the server is up (403/404: fine).
s3_ready() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$S3_ENDPOINT/$S3_BUCKET" 2>/dev/null || true)"
  [ -n "$code" ] && [ "$code" != 000 ]
}

s3_up() {
  command -v curl >/dev/null || apt_install curl
  pid_alive "$S3_PID" && same_port s3 "$S3_PORTS" S3_PORT "$S3_PORT"
  if pid_alive "$S3_PID" && s3_ready; then
    s3_bucket
    log "s3: already running (pid $(cat "$S3_PID")) at $S3_ENDPOINT, bucket $S3_BUCKET"
    echo "$S3_PORT" >"$S3_PORTS"
    return 0
  fi
  if ! pid_alive "$S3_PID"; then
    if port_open "$S3_HOST" "$S3_PORT"; then
      if s3_ready && [ "$(s3_signed -I "$S3_ENDPOINT/$S3_BUCKET")" = 200 ]; then
        log "s3: $S3_ENDPOINT already served (bucket $S3_BUCKET, same credentials) by a process this checkout did not start; using it"
        return 0
      fi
      die "s3: $S3_HOST:$S3_PORT is taken by a process this script did not start (and it does not serve bucket $S3_BUCKET with these credentials): set S3_PORT to a free port, e.g. S3_PORT=19000"
    fi
    s3_install
    s3_configure
    log "s3: starting S3Proxy $S3PROXY_VERSION"
    spawn "$S3_PID" "$S3_LOG" java $S3_HEAP -XX:+UseSerialGC \
      -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
      -Dlogback.statusListenerClass=ch.qos.logback.core.status.NopStatusListener \
      -jar "$S3_JAR" --properties "$S3_DIR/s3proxy.properties"
    echo "$S3_PORT" >"$S3_PORTS"
  fi
  wait_ready s3 s3_ready "$S3_LOG" 0.3 "$S3_PID"
  s3_bucket
  log "s3: ready at $S3_ENDPOINT (pid $(cat "$S3_PID"), ${WAITED}s), bucket $S3_BUCKET, data $S3_DATA, log $S3_LOG"
}

s3_down() { stop_pidfile s3 "$S3_PID" 15 && rm -f "$S3_PORTS"; }

s3_status() { service_status s3 "$S3_PID" s3_ready "$S3_ENDPOINT bucket $S3_BUCKET" "$S3_LOG"; }

# ---------------------------------------------------------------------------------------------
# PostgreSQL 15: a throwaway cluster under .stack/pg, owned by the postgres OS user when root
# ---------------------------------------------------------------------------------------------
PG_PID="$RUN/pg.pid"
PG_PORTS="$RUN/pg.port"
PG_BIN=""

# The cluster lives in .stack/pg when the postgres OS user can reach it; a checkout under a
# private directory (e.g. a mktemp -d clone, mode 0700) is not reachable for it, so the cluster
# then lives in /var/tmp/rxlake-pg-<hash of the stack path> and .stack/pg links there.
pg_paths() {
  PG_DIR="$STACK/pg"
  if [ "$(id -u)" = 0 ] && id postgres >/dev/null 2>&1 \
    && ! (cd / && runuser -u postgres -- test -x "$STACK") 2>/dev/null; then
    local outside
    outside="/var/tmp/rxlake-pg-$(printf '%s' "$STACK" | cksum | cut -d' ' -f1)"
    mkdir -p "$outside"
    chown postgres: "$outside"
    if [ ! -L "$STACK/pg" ]; then
      rm -rf "$STACK/pg"
      mkdir -p "$STACK"
      ln -s "$outside" "$STACK/pg"
    fi
    PG_DIR="$outside"
  fi
  PG_DATA="$PG_DIR/data"
  PG_SOCK="$PG_DIR/sock"
  PG_LOG="$PG_DIR/postgres.log"
}
pg_paths

pg_find_bin() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -x "$d/initdb" ]; then PG_BIN="$d"; return 0; fi
  done
  return 1
}

pg_install() {
  pg_find_bin && return 0
  log "pg: installing the Debian package postgresql (first run only)"
  apt_install postgresql
  pg_find_bin || die "pg: initdb not found after installing postgresql"
}

# Runs a PostgreSQL tool as the cluster's owner.
as_pg() {
  if [ "$(id -u)" = 0 ]; then
    (cd / && runuser -u postgres -- "$@")
  else
    "$@"
  fi
}

pg_ready() { as_pg "$PG_BIN/pg_isready" -q -h "$PG_HOST" -p "$PG_PORT" -t 2 >/dev/null 2>&1; }

pg_server_pid() { head -n1 "$PG_DATA/postmaster.pid" 2>/dev/null || true; }

pg_up() {
  pg_install
  pg_paths
  pid_alive "$PG_PID" "$PG_DIR" && same_port pg "$PG_PORTS" PG_PORT "$PG_PORT"
  if pid_alive "$PG_PID" "$PG_DIR" && pg_ready; then
    log "pg: already running (pid $(cat "$PG_PID")) on $PG_HOST:$PG_PORT"
    echo "$PG_PORT" >"$PG_PORTS"
    return 0
  fi
  if ! pid_alive "$PG_PID" "$PG_DIR"; then
    if port_open "$PG_HOST" "$PG_PORT"; then
      if pg_ready && as_pg "$PG_BIN/psql" -X -q -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -c 'select 1' >/dev/null 2>&1; then
        log "pg: $PG_HOST:$PG_PORT already served (user postgres, trust) by a server this checkout did not start; using it"
        return 0
      fi
      die "pg: $PG_HOST:$PG_PORT is taken by a process this script did not start (and user postgres cannot log in): set PG_PORT to a free port, e.g. PG_PORT=55329"
    fi
    # The socket path must fit in 107 bytes; fall back to a private temp dir for deep checkouts.
    if [ "${#PG_SOCK}" -gt 90 ]; then PG_SOCK="$(mktemp -d /tmp/rxlake-pg.XXXXXX)"; fi
    mkdir -p "$PG_DIR" "$PG_SOCK"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$PG_DIR" "$PG_SOCK"; fi
    if [ ! -f "$PG_DATA/PG_VERSION" ]; then
      log "pg: initdb $PG_DATA"
      rm -rf "$PG_DATA"
      as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust --encoding=UTF8 --locale=C \
        >"$PG_DIR/initdb.log" 2>&1 || die_with_log "pg: initdb failed" "$PG_DIR/initdb.log"
      cat "$HERE/postgresql.conf" | as_pg tee -a "$PG_DATA/postgresql.conf" >/dev/null
    fi
    log "pg: starting PostgreSQL $(basename "$(dirname "$PG_BIN")")"
    as_pg touch "$PG_LOG" 2>/dev/null || true
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -t "$START_TIMEOUT" -w \
      -o "-p $PG_PORT -k $PG_SOCK -c listen_addresses=$PG_HOST" start >/dev/null 2>&1 \
      || die_with_log "pg: pg_ctl start failed" "$PG_LOG"
    pg_server_pid >"$PG_PID"
    echo "$PG_PORT" >"$PG_PORTS"
  fi
  wait_ready pg pg_ready "$PG_LOG" 0.3 "$PG_PID" "$PG_DIR"
  log "pg: ready on $PG_HOST:$PG_PORT (pid $(cat "$PG_PID")), user postgres (trust), data $PG_DATA, log $PG_LOG"
}

pg_down() {
  if pid_alive "$PG_PID" "$PG_DIR" && pg_find_bin && [ "$(pg_server_pid)" = "$(cat "$PG_PID")" ]; then
    local pid
    pid="$(cat "$PG_PID")"
    if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 30 stop >/dev/null 2>&1; then
      rm -f "$PG_PID" "$PG_PORTS"
      log "pg: stopped (pid $pid)"
      return 0
    fi
  fi
  stop_pidfile pg "$PG_PID" 30 "$PG_DIR" && rm -f "$PG_PORTS"
}

pg_status() {
  pg_find_bin || { log "pg: down (not installed)"; return 1; }
  service_status pg "$PG_PID" pg_ready "$PG_HOST:$PG_PORT" "$PG_LOG" "$PG_DIR"
}

# ---------------------------------------------------------------------------------------------
# Python venv with delta-rs (deltalake) + pyarrow: the independent Delta reader of the tests
# ---------------------------------------------------------------------------------------------
VENV="$STACK/venv"
VENV_LOG="$STACK/venv-install.log"
VENV_PACKAGES=("deltalake>=1.1,<2" "pyarrow>=16")

venv_create() {
  "$1" -m venv "$VENV" &&
    "$VENV/bin/python" -m pip install --disable-pip-version-check --no-input --progress-bar off "${VENV_PACKAGES[@]}"
}

venv_ok() { [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import deltalake, pyarrow' >/dev/null 2>&1; }

venv_up() {
  venv_ok || { reuse_download venv bin/python && venv_ok; } || true
  if venv_ok; then
    log "venv: ready $VENV (deltalake $("$VENV/bin/python" -c 'import deltalake; print(deltalake.__version__)'))"
    return 0
  fi
  local py
  py="$(command -v python3 || true)"
  if [ -z "$py" ] || ! "$py" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    apt_install python3 python3-venv python3-pip
    py="$(command -v python3)"
  fi
  log "venv: creating $VENV with $py ($("$py" --version 2>&1)); pip install ${VENV_PACKAGES[*]} (first run only, ~1 min)"
  rm -rf "$VENV"
  run_logged venv "$VENV_LOG" venv_create "$py" || die_with_log "venv: pip install failed" "$VENV_LOG"
  venv_ok || die_with_log "venv: deltalake/pyarrow do not import" "$VENV_LOG"
  log "venv: ready $VENV (deltalake $("$VENV/bin/python" -c 'import deltalake; print(deltalake.__version__)'))"
}

venv_down() { :; }

venv_status() {
  if venv_ok; then log "venv: ok    $VENV"; else log "venv: missing ($VENV)"; return 1; fi
}

# ---------------------------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------------------------
ALL_SERVICES=(kafka s3 pg venv)
# Started only when named (`up kafka-secure`, `up registry`); `down` and `reset` without names stop them too,
# `status` without names shows them when this stack started them.
OPTIONAL_SERVICES=(kafka-secure registry)

# npm packages (the Kafka readiness probe, the tests and the demo need them): `npm ci` when
# node_modules is missing or older than the lock file.
npm_deps() {
  if [ ! -d "$ROOT/node_modules" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    log "npm: npm ci"
    (cd "$ROOT" && npm ci --no-audit --no-fund >"$STACK/npm-ci.log" 2>&1) || die_with_log "npm: npm ci failed" "$STACK/npm-ci.log"
  fi
}

# The port variables of the services asked for: whole numbers 1-65535, all different.
check_service_ports() {
  local s names=(KAFKA_PORT KAFKA_CONTROLLER_PORT S3_PORT PG_PORT)
  for s in "$@"; do
    case "$s" in
      kafka-secure) names+=("${KS_PORT_VARS[@]}") ;;
      registry) names+=("${REG_PORT_VARS[@]}") ;;
    esac
  done
  check_ports "${names[@]}"
}

main() {
  local cmd="${1:-}"
  shift || true
  local services=("$@") s
  if [ "${#services[@]}" -eq 0 ]; then
    services=("${ALL_SERVICES[@]}")
    case "$cmd" in
      down | reset) services+=("${OPTIONAL_SERVICES[@]}") ;;
      status) for s in "${OPTIONAL_SERVICES[@]}"; do [ -f "$RUN/$s.pid" ] && services+=("$s"); done ;;
    esac
  fi
  for s in "${services[@]}"; do
    case "$s" in kafka | s3 | pg | venv | kafka-secure | registry) ;; *) die "unknown service '$s' (kafka s3 pg venv, and only when named: ${OPTIONAL_SERVICES[*]})" ;; esac
  done
  mkdir -p "$STACK" "$RUN"
  case "$cmd" in
    up)
      check_service_ports "${services[@]}"
      npm_deps
      for s in "${services[@]}"; do "${s}_up"; done
      log "all up: ${services[*]}"
      ;;
    install)
      for s in "${services[@]}"; do
        case "$s" in venv) venv_up ;; *) "${s}_install" ;; esac
      done
      log "installed: ${services[*]}"
      ;;
    down)
      local i
      for ((i = ${#services[@]} - 1; i >= 0; i--)); do "${services[$i]}_down"; done
      ;;
    reset)
      local i
      for ((i = ${#services[@]} - 1; i >= 0; i--)); do "${services[$i]}_down"; done
      for s in "${services[@]}"; do
        case "$s" in
          kafka) rm -rf "$KAFKA_DATA" ;;
          s3) rm -rf "$S3_DATA" ;;
          pg) rm -rf "$PG_DATA" ;;
          kafka-secure) rm -rf "$KS_DATA" "$KS_SECRETS" "$KS_TLS" "$KS_USERS" "$KS_CLIENT" "$KS_ADMIN" ;;
          venv | registry) ;; # the registry keeps its schemas in memory
        esac
        log "$s: data wiped"
      done
      ;;
    status)
      local rc=0
      for s in "${services[@]}"; do "${s}_status" || rc=1; done
      return "$rc"
      ;;
    *)
      echo "usage: bash scripts/stack.sh up|down|status|install|reset [kafka s3 pg venv] [${OPTIONAL_SERVICES[*]}]" >&2
      exit 2
      ;;
  esac
}

main "$@"
