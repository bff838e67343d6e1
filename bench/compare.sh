#!/usr/bin/env bash
# One command for issue 14's comparison on this machine:
#
#   bench/compare.sh [--rounds 3] [--seconds 10] [--warmup 2] [--quick] [-- EXTRA LOAD FLAGS]
#
# Builds the release binaries, then runs rounds INTERLEAVED (each round: fsync, echo,
# echo-fsync, rabbitmq, nats, silta (send, consume), silta with the NAS consuming (cycle),
# silta-nosync (send)), every system a separate server process
# (brokers started and stopped around their own run through bench/brokers.sh, so an idle broker
# never shares the cores with another system's run). Every Outcome line goes to
# bench/results/<UTC time>.jsonl; bench-report then writes the tables to stdout and to
# bench/results/<UTC time>.md, and the plot to docs/perf/throughput-p99.svg.
# --quick: one round of 2 s windows (1 s warm-up), to check the pipeline, not to quote.
# A broker whose script or load binary is missing is skipped with a message.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

ROUNDS=3
SECS=10
WARMUP=2
EXTRA=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --rounds) ROUNDS=${2:?--rounds needs a number}; shift 2 ;;
        --seconds) SECS=${2:?--seconds needs a number}; shift 2 ;;
        --warmup) WARMUP=${2:?--warmup needs a number}; shift 2 ;;
        --quick) ROUNDS=1; SECS=2; WARMUP=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "compare.sh: unknown argument $1 (see --help)" >&2; exit 64 ;;
    esac
done
[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || { echo "compare.sh: --rounds must be a positive integer" >&2; exit 64; }
[[ $SECS =~ ^[0-9]+(\.[0-9]+)?$ && $WARMUP =~ ^[0-9]+(\.[0-9]+)?$ ]] \
    || { echo "compare.sh: --seconds and --warmup must be numbers" >&2; exit 64; }

echo "== building release binaries" >&2
cargo build --release -p silta-relay -p silta-bench >&2
BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release"
# brokers.sh mints the brokers' certificates with bench-pki; the built one saves a cargo run.
if [[ -x $BIN/bench-pki ]]; then export BENCH_PKI="$BIN/bench-pki"; fi

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench/results docs/perf
OUT="bench/results/$STAMP.jsonl"
MD="bench/results/$STAMP.md"
LOG="bench/results/$STAMP.log"
# Data of every server on this repository's disk (the disk under test), removed at the end.
WORK=$(mktemp -d "$ROOT/target/bench-run.XXXXXX")
STARTED_BROKER=""
cleanup() {
    if [[ -n $STARTED_BROKER ]]; then
        bench/brokers.sh stop "$STARTED_BROKER" "$WORK/$STARTED_BROKER" >>"$LOG" 2>&1 || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
: >"$OUT"

# Messages preloaded for Silta's consume window: enough for ~5k acks/s through warm-up + window
# (if the mailbox drains sooner, silta-load ends the window there and says so).
PRELOAD=$(awk -v s="$SECS" -v w="$WARMUP" 'BEGIN { printf "%d", (s + w) * 5000 }')

run() { # NAME COMMAND...: one system's run; its Outcome lines to $OUT, logs to $LOG.
    local name=$1; shift
    echo "-- round $r: $name" >&2
    if "$@" 2>>"$LOG" | tee -a "$OUT"; then
        :
    else
        echo "compare.sh: $name failed in round $r (see $LOG); continuing" >&2
    fi
}

broker() { # rabbitmq|nats LOADBIN
    local name=$1 load=$2
    if [[ ! -x bench/brokers.sh ]]; then
        echo "-- round $r: $name skipped: bench/brokers.sh is not in this tree" >&2
        return
    fi
    if [[ ! -x $BIN/$load ]]; then
        echo "-- round $r: $name skipped: no $load binary in $BIN" >&2
        return
    fi
    local dir="$WORK/$name" vars
    mkdir -p "$dir"
    STARTED_BROKER=$name # stopped on exit even if starting fails half-way
    if ! vars=$(bench/brokers.sh start "$name" "$dir" 2>>"$LOG"); then
        echo "-- round $r: $name skipped: bench/brokers.sh start $name failed (see $LOG)" >&2
        bench/brokers.sh stop "$name" "$dir" >>"$LOG" 2>&1 || true
        STARTED_BROKER=""
        return
    fi
    # One line of shell assignments (values quoted with printf %q), e.g.
    # PID=123 URL=amqps://... CA=... CERT=... KEY=...; only such a line is evaluated.
    local PID="" URL="" CA="" CERT="" KEY="" line
    line=$(tail -n 1 <<<"$vars")
    # A %q value: no bare blank or shell metacharacter (%q escapes them with a backslash).
    local v='([^][:space:];&|`$()<>\\"'"'"'*?{}[]|\\.)+'
    if [[ $line =~ ^PID=[0-9]+\ URL=$v\ CA=$v\ CERT=$v\ KEY=$v$ ]]; then
        eval "$line"
    fi
    if [[ -z $PID || -z $URL || -z $CA || -z $CERT || -z $KEY ]]; then
        echo "-- round $r: $name skipped: brokers.sh printed no PID/URL/CA/CERT/KEY" >&2
    else
        run "$name" "$BIN/$load" --url "$URL" --ca "$CA" --cert "$CERT" --key "$KEY" \
            --server-pid "$PID" "${COMMON[@]}"
    fi
    bench/brokers.sh stop "$name" "$dir" >>"$LOG" 2>&1 || echo "compare.sh: stopping $name failed" >&2
    STARTED_BROKER=""
    rm -rf "$dir"
}

for ((r = 1; r <= ROUNDS; r++)); do
    COMMON=(--seconds "$SECS" --warmup "$WARMUP" --round "$r" "${EXTRA[@]}")
    run fsync "$BIN/fsync-load" --data-dir "$WORK" "${COMMON[@]}"
    run echo "$BIN/echo-load" --data-dir "$WORK" "${COMMON[@]}"
    run echo-fsync "$BIN/echo-load" --fsync --data-dir "$WORK" "${COMMON[@]}"
    broker rabbitmq rabbit-load
    broker nats nats-load
    # Pure send (comparable with the brokers' publish runs), then the drain of a preloaded
    # mailbox (consume), then the full cycle: sends while the Assistance System subscribes and
    # acknowledges with signed acks at the same time (mode "cycle").
    run silta "$BIN/silta-load" --relay-bin "$BIN/silta-relay" --mode all \
        --preload "$PRELOAD" --data-dir "$WORK" "${COMMON[@]}"
    run silta-cycle "$BIN/silta-load" --relay-bin "$BIN/silta-relay" --mode send --consume \
        --data-dir "$WORK" "${COMMON[@]}"
    run silta-nosync "$BIN/silta-load" --relay-bin "$BIN/silta-relay" --no-sync --mode send \
        --data-dir "$WORK" "${COMMON[@]}"
done

{
    echo "# Comparison $STAMP"
    echo
    echo "- machine: $(uname -srm), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //')"
    echo "- commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (with local changes)')"
    echo "- $ROUNDS interleaved round(s), ${SECS} s windows after ${WARMUP} s warm-up; load flags: ${EXTRA[*]:-defaults (64 in flight, 4 connections, 4096 bytes)}"
    echo "- raw results: $OUT"
    "$BIN/bench-report" "$OUT" --svg docs/perf/throughput-p99.svg
} | tee "$MD"
echo "compare.sh: tables in $MD, plot in docs/perf/throughput-p99.svg, logs in $LOG" >&2
