#!/usr/bin/env bash
# Measures what one classify pod sized for Knative (1 inference worker, 1 ONNX Runtime
# thread, 1 CPU) serves: the built function runs confined to one core with `taskset`, hey
# runs on the other cores over loopback, and scripts/load-test.sh steps the concurrency.
# The server's RSS is sampled meanwhile. docs/performance.md derives containerConcurrency,
# target, KLASSIFY_QUEUE_SIZE and the memory request/limit from the result, and
# docs/scaling.md feeds the curve to its autoscaler model.
#
#   scripts/pod-capacity.sh                                   # defaults below
#   scripts/pod-capacity.sh --levels "1 2 4 8" --duration 10s --out bench/results/pod-1cpu
#
# Options (the rest are passed to scripts/load-test.sh):
#   --server-cpu N   the core the function runs on (default 0)
#   --hey-cpus LIST  the cores hey runs on (default: every other core)
#   --port P         loopback port (default 18090)
#   --levels, --duration, --pause, --out, --label   as in scripts/load-test.sh
# Environment: KLASSIFY_MODEL_MIRROR etc. as for `npm start`. Workers, threads and
# MALLOC_ARENA_MAX are the manifest's (knative/base/200-classify-service.yaml); the queue
# is unbounded, so that the curve shows queueing where the pod would shed load.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

SERVER_CPU=0
HEY_CPUS=""
PORT=18090
LEVELS="1 2 3 4 6 8 12 16"
DURATION="10s"
OUT="$ROOT/bench/results/pod-1cpu-$(date -u +%Y%m%dT%H%M%SZ)"
LABEL="one pod: 1 worker, 1 core"
PASSTHROUGH=()
SERVER_PID=""
SAMPLER_PID=""

parse_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      --server-cpu) SERVER_CPU=$2; shift 2 ;;
      --hey-cpus) HEY_CPUS=$2; shift 2 ;;
      --port) PORT=$2; shift 2 ;;
      --levels) LEVELS=$2; shift 2 ;;
      --duration) DURATION=$2; shift 2 ;;
      --out) OUT=$2; shift 2 ;;
      --label) LABEL=$2; shift 2 ;;
      -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) PASSTHROUGH+=("$1" "$2"); shift 2 ;;
    esac
  done
  [[ $SERVER_CPU =~ ^[0-9]+$ ]] || die "--server-cpu takes a core number, got '$SERVER_CPU'"
  if [[ -z $HEY_CPUS ]]; then
    HEY_CPUS=$(seq 0 $(($(nproc) - 1)) | grep -vx "$SERVER_CPU" | paste -sd, -)
    [[ -n $HEY_CPUS ]] || die "one core only: hey would share it with the server; pass --hey-cpus"
  fi
}

# The pod's settings, as in knative/base/200-classify-service.yaml.
start_server() {
  [[ -f $ROOT/dist/classify/main.js ]] || (cd "$ROOT" && npm run build >/dev/null)
  mkdir -p "$OUT"
  log "starting the function on core $SERVER_CPU (port $PORT)"
  (cd "$ROOT" && exec env PORT="$PORT" HOST=127.0.0.1 KLASSIFY_WORKERS=1 KLASSIFY_INTRA_OP_THREADS=1 \
    KLASSIFY_QUEUE_SIZE=1000 MALLOC_ARENA_MAX=2 \
    taskset -c "$SERVER_CPU" node dist/classify/main.js >"$OUT/server.log" 2>&1) &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 600; i++)); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health/readiness" 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "the function exited; see $OUT/server.log"
    sleep 0.1
  done
  die "the function was not ready within 60 s; see $OUT/server.log"
}

# epoch,rss_mb every 0.5 s (VmRSS: main thread and worker together).
sample_rss() {
  echo "epoch,rss_mb" >"$OUT/rss.csv"
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    awk -v t="$(date +%s.%N | cut -c1-14)" '/^VmRSS/ { printf "%s,%.1f\n", t, $2 / 1024 }' "/proc/$SERVER_PID/status" >>"$OUT/rss.csv" 2>/dev/null || true
    sleep 0.5
  done
}

# rss-steps.csv: the largest RSS seen during each concurrency step.
rss_per_step() {
  echo "concurrency,rss_max_mb" >"$OUT/rss-steps.csv"
  local c started ended
  while IFS=$'\t' read -r c started ended; do
    awk -F, -v s="$started" -v e="$ended" -v c="$c" \
      'NR > 1 && $1 >= s && $1 <= e && $2 > m { m = $2 } END { printf "%s,%s\n", c, m }' "$OUT/rss.csv" >>"$OUT/rss-steps.csv"
  done <"$OUT/steps.tsv"
}

cleanup() {
  if [[ -n $SAMPLER_PID ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
}

main() {
  parse_args "$@"
  command -v taskset >/dev/null 2>&1 || die "taskset not found (util-linux)"
  trap cleanup EXIT
  start_server
  local idle
  idle=$(awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status")
  sample_rss &
  SAMPLER_PID=$!
  printf '{"loadavgBefore":"%s","serverCpu":%s,"heyCpus":"%s","rssIdleMb":%s}\n' \
    "$(cut -d' ' -f1-3 /proc/loadavg)" "$SERVER_CPU" "$HEY_CPUS" "$idle" >"$OUT/pod.json"
  "$ROOT/scripts/load-test.sh" --url "http://127.0.0.1:$PORT/classify" --levels "$LEVELS" --duration "$DURATION" \
    --hey-cpus "$HEY_CPUS" --out "$OUT" --label "$LABEL" "${PASSTHROUGH[@]}"
  cleanup
  SAMPLER_PID="" SERVER_PID=""
  rss_per_step
  column -s, -t "$OUT/rss-steps.csv" >&2
  log "RSS idle ${idle} MB, max under load $(tail -n +2 "$OUT/rss.csv" | cut -d, -f2 | sort -n | tail -1) MB; load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
}

main "$@"
