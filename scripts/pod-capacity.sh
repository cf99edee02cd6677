#!/usr/bin/env bash
# Measures what one classify pod sized for Knative (1 inference worker, 1 ONNX Runtime
# thread) serves under a CPU limit: the built function runs in a cgroup with a CFS quota of
# --cpu-quota CPUs, which is how the kubelet enforces a pod's CPU limit (the process may run
# on any core, for at most that much CPU time per 100 ms); hey runs outside it over
# loopback, and scripts/load-test.sh steps the concurrency. The memory of the server and
# its decoder processes is sampled meanwhile. A quota of 1 is the pod's limit, 0.5 its request (what it is guaranteed on a
# busy node); the two give the per-pod throughput range in knative/base/200-classify-service.yaml.
# Without a writable cgroup (v2 cpu.max or v1 cpu.cfs_quota_us; needs root), it falls back
# to pinning the function to one core with taskset, and says so in pod.json.
# Linux only: cgroups, taskset and /proc are Linux interfaces; it is a benchmark, not
# something a user runs on a laptop.
#
#   scripts/pod-capacity.sh                                   # defaults below
#   scripts/pod-capacity.sh --cpu-quota 0.5 --levels "1 2 4 8" --duration 10s
#
# Options (the rest are passed to scripts/load-test.sh):
#   --cpu-quota Q    CPUs of CFS quota for the function (default 1)
#   --server-cpu N   the core the function runs on when it falls back to taskset (default 0)
#   --hey-cpus LIST  the cores hey runs on (default: all with a quota; every other core with taskset)
#   --port P         loopback port (default 18090)
#   --levels, --duration, --pause, --out, --label   as in scripts/load-test.sh
# Environment: KLASSIFY_MODEL_MIRROR etc. as for `npm start`. Workers, threads and
# MALLOC_ARENA_MAX are the manifest's (knative/base/200-classify-service.yaml); the queue
# is unbounded, so that the curve shows queueing where the pod would shed load.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"

CPU_QUOTA=1
SERVER_CPU=0
HEY_CPUS=""
CGROUP=""
CONFINEMENT=""
PORT=18090
LEVELS="1 2 3 4 6 8 12 16"
DURATION="10s"
OUT=""
LABEL=""
PASSTHROUGH=()
SERVER_PID=""
SAMPLER_PID=""

parse_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      --cpu-quota) CPU_QUOTA=$2; shift 2 ;;
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
  [[ $CPU_QUOTA =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--cpu-quota takes a number of CPUs, got '$CPU_QUOTA'"
  [[ -n $OUT ]] || OUT="$ROOT/bench/results/pod-quota$CPU_QUOTA-$(date -u +%Y%m%dT%H%M%SZ)"
  [[ -n $LABEL ]] || LABEL="one pod: 1 worker, CPU quota $CPU_QUOTA"
}

# A cgroup that holds its processes to CPU_QUOTA CPUs of CFS bandwidth per 100 ms period.
make_cgroup() {
  local quota_us
  quota_us=$(awk -v q="$CPU_QUOTA" 'BEGIN { printf "%d", q * 100000 }')
  if [[ -f /sys/fs/cgroup/cgroup.controllers ]]; then
    CGROUP="/sys/fs/cgroup/klassify-pod-$$"
    mkdir "$CGROUP" 2>/dev/null || return 1
    grep -qw cpu "$CGROUP/cgroup.controllers" || { rmdir "$CGROUP"; CGROUP=""; return 1; }
    echo "$quota_us 100000" >"$CGROUP/cpu.max" || return 1
    CONFINEMENT="CFS quota $CPU_QUOTA CPU (cgroup v2 cpu.max $quota_us/100000)"
  elif [[ -w /sys/fs/cgroup/cpu ]]; then
    CGROUP="/sys/fs/cgroup/cpu/klassify-pod-$$"
    mkdir "$CGROUP" 2>/dev/null || return 1
    echo 100000 >"$CGROUP/cpu.cfs_period_us" && echo "$quota_us" >"$CGROUP/cpu.cfs_quota_us" || return 1
    CONFINEMENT="CFS quota $CPU_QUOTA CPU (cgroup v1 cpu.cfs_quota_us $quota_us/100000)"
  else
    return 1
  fi
}

# Where the server runs and where hey runs: in the quota cgroup with hey anywhere, or, as
# the fallback, on one core with hey on the others.
choose_confinement() {
  if make_cgroup; then
    return 0
  fi
  command -v taskset >/dev/null 2>&1 || die "no writable cgroup for a CPU quota, and no taskset"
  CONFINEMENT="taskset: core $SERVER_CPU (no writable cgroup for a CFS quota here)"
  LABEL="one pod: 1 worker, 1 core (taskset)"
  if [[ -z $HEY_CPUS ]]; then
    HEY_CPUS=$(seq 0 $(($(host_cpus) - 1)) | grep -vx "$SERVER_CPU" | paste -sd, -)
    [[ -n $HEY_CPUS ]] || die "one core only: hey would share it with the server; pass --hey-cpus"
  fi
}

# The pod's settings, as in knative/base/200-classify-service.yaml.
start_server() {
  [[ -f $ROOT/dist/classify/main.js ]] || (cd "$ROOT" && npm run build >/dev/null)
  mkdir -p "$OUT"
  # Something already answering there would be measured instead of this server.
  if curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$PORT/"; then die "port $PORT is in use; pass --port with a free one"; fi
  log "starting the function under $CONFINEMENT (port $PORT)"
  local confine=(taskset -c "$SERVER_CPU")
  # The subshell joins the cgroup, then becomes the server: nothing else runs under the quota.
  # shellcheck disable=SC2016 # expanded by that sh, not here
  if [[ -n $CGROUP ]]; then confine=(sh -c 'echo $$ >"$0/cgroup.procs" && shift && exec "$@"' "$CGROUP" _); fi
  (cd "$ROOT" && exec env PORT="$PORT" HOST=127.0.0.1 KLASSIFY_WORKERS=1 KLASSIFY_INTRA_OP_THREADS=1 \
    KLASSIFY_QUEUE_SIZE=1000 MALLOC_ARENA_MAX=2 \
    "${confine[@]}" node dist/classify/main.js >"$OUT/server.log" 2>&1) &
  SERVER_PID=$!
  local i
  for ((i = 0; i < 600; i++)); do
    if curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health/readiness" 2>/dev/null; then return 0; fi
    kill -0 "$SERVER_PID" 2>/dev/null || die "the function exited; see $OUT/server.log"
    sleep 0.1
  done
  die "the function was not ready within 60 s; see $OUT/server.log"
}

# The server and every process it started (its decoder processes), from /proc.
tree_pids() {
  local child
  echo "$1"
  cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | while read -r child; do
    if [[ -n $child ]]; then tree_pids "$child"; fi
  done
}

# The memory of the server with its decoder processes (decoding runs there), in MB: the sum
# of their PSS, which counts shared pages (the node binary, libvips) once, as the pod's
# memory limit does.
tree_pss_mb() {
  local pid rollups=()
  while read -r pid; do rollups+=("/proc/$pid/smaps_rollup"); done < <(tree_pids "$SERVER_PID")
  awk '/^Pss:/ { kb += $2 } END { printf "%.1f", kb / 1024 }' "${rollups[@]}"
}

# epoch,rss_mb,cpu_s every 0.5 s, for the server with its decoder processes: their memory
# (tree_pss_mb), and the CPU time they have used (user + system, all threads), which a
# loaded machine delays but does not inflate much.
sample_rss() {
  local tick pid stats
  tick=$(getconf CLK_TCK)
  echo "epoch,rss_mb,cpu_s" >"$OUT/rss.csv"
  while kill -0 "$SERVER_PID" 2>/dev/null; do
    stats=()
    while read -r pid; do stats+=("/proc/$pid/stat"); done < <(tree_pids "$SERVER_PID")
    {
      printf '%s,%s,' "$(epoch_now)" "$(tree_pss_mb)"
      # After the command name (which may hold spaces), utime and stime are fields 12 and 13.
      awk -v tick="$tick" '{ sub(/^.*\) /, ""); t += $12 + $13 } END { printf "%.2f\n", t / tick }' "${stats[@]}"
    } >>"$OUT/rss.csv" 2>/dev/null || true
    sleep 0.5
  done
}

# rss-steps.csv, per concurrency step: the largest RSS, the CPUs the server used on
# average, and its CPU time per answered request (from results.csv's 200s per second).
rss_per_step() {
  echo "concurrency,rss_max_mb,cpus_used,cpu_ms_per_request" >"$OUT/rss-steps.csv"
  local c started ended ok_rps
  while IFS=$'\t' read -r c started ended; do
    ok_rps=$(awk -F, -v c="$c" 'NR > 1 && $1 == c { print $5 }' "$OUT/results.csv")
    awk -F, -v s="$started" -v e="$ended" -v c="$c" -v ok="$ok_rps" '
      NR > 1 && $1 >= s && $1 <= e {
        if ($2 > m) m = $2
        if (t0 == "") { t0 = $1; c0 = $3 }
        t1 = $1; c1 = $3
      }
      END {
        used = (t1 > t0) ? (c1 - c0) / (t1 - t0) : 0
        printf "%s,%s,%.2f,%s\n", c, m, used, (ok > 0 ? sprintf("%.1f", 1000 * used / ok) : "")
      }' "$OUT/rss.csv" >>"$OUT/rss-steps.csv"
  done <"$OUT/steps.tsv"
}

cleanup() {
  if [[ -n $SAMPLER_PID ]]; then kill "$SAMPLER_PID" 2>/dev/null || true; wait "$SAMPLER_PID" 2>/dev/null || true; fi
  if [[ -n $SERVER_PID ]]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [[ -n $CGROUP ]]; then rmdir "$CGROUP" 2>/dev/null || true; fi
}

# How much the quota held the server back: the cgroup's throttling counters (cpu.stat).
throttling() {
  [[ -n $CGROUP && -f $CGROUP/cpu.stat ]] || { echo '{}'; return; }
  awk 'BEGIN { printf "{" } { printf "%s\"%s\": %s", (NR > 1 ? ", " : ""), $1, $2 } END { printf "}" }' "$CGROUP/cpu.stat"
}

main() {
  parse_args "$@"
  [[ $(os_name) == Linux ]] || die "pod-capacity.sh measures with Linux cgroups (or taskset); run it on Linux"
  trap cleanup EXIT
  choose_confinement
  start_server
  local idle
  idle=$(tree_pss_mb)
  sample_rss &
  SAMPLER_PID=$!
  local hey_args=()
  if [[ -n $HEY_CPUS ]]; then hey_args=(--hey-cpus "$HEY_CPUS"); fi
  "$ROOT/scripts/load-test.sh" --url "http://127.0.0.1:$PORT/classify" --levels "$LEVELS" --duration "$DURATION" \
    --out "$OUT" --label "$LABEL" ${hey_args[@]+"${hey_args[@]}"} ${PASSTHROUGH[@]+"${PASSTHROUGH[@]}"}
  printf '{"loadavgAfter":"%s","confinement":"%s","cpuQuota":%s,"heyCpus":"%s","rssIdleMb":%s,"throttling":%s}\n' \
    "$(load_average)" "$CONFINEMENT" "$CPU_QUOTA" "$HEY_CPUS" "$idle" "$(throttling)" >"$OUT/pod.json"
  cleanup
  SAMPLER_PID="" SERVER_PID="" CGROUP=""
  rss_per_step
  column -s, -t "$OUT/rss-steps.csv" >&2
  log "memory (PSS, server + decoders) idle ${idle} MB, max under load $(tail -n +2 "$OUT/rss.csv" | cut -d, -f2 | sort -n | tail -1) MB; load average after: $(load_average)"
}

main "$@"
