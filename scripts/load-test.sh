#!/usr/bin/env bash
# Load-tests the classify function with hey: steps through concurrency levels with a fixed
# duration each, POSTing a realistic ~100 KB 800×533 JPEG, and writes per-step throughput,
# latency percentiles and status codes as JSON/CSV, SVG charts and one self-contained HTML
# report (report.html; bench/load-report.ts). On Knative the report adds pods over time,
# cold starts and the autoscaler model's prediction beside the measurement. Runs on macOS
# (bash 3.2, BSD tools) and Linux; exits non-zero if any step, the report included, fails.
#
#   scripts/load-test.sh                               # http://127.0.0.1:8080/classify
#   scripts/load-test.sh --levels "1 2 4 8" --duration 10s
#   scripts/load-test.sh --knative                     # the Minikube route; samples pods
#   scripts/load-test.sh --knative --cold-starts 3     # plus first-request latency from zero
#
# Options:
#   --url URL            target (default http://127.0.0.1:8080/classify; with --knative the
#                        address `minikube tunnel` gave Kourier + /classify, with the ksvc's
#                        host name as Host header)
#   --host NAME          Host header to send (for a port-forwarded Kourier gateway: the
#                        host name of the URL scripts/minikube-up.sh printed)
#   --hey-cpus LIST      run hey under `taskset -c LIST` (Linux only; keep it off the
#                        server's cores)
#   --levels "N N ..."   concurrency steps (default "1 2 4 8 16 32")
#   --duration D         per step, hey's -z syntax (default 15s)
#   --pause S            seconds between steps (default 2)
#   --image FILE         request body (default: generated once under .cache/load-test/)
#   --out DIR            results directory (default bench/results/load-<UTC time>)
#   --label TEXT         chart subtitle (default: local or knative)
#   --knative            sample ready, pending and all pods every --sample-every seconds
#   --sample-every S     pod sampling interval (default 2)
#   --cold-starts N      on Knative: N times, wait for scale to zero, then time one request
#   --zero-timeout S     how long to wait for scale to zero (default: derived from the
#                        Service: stable window + max(retention, grace period) + the
#                        queue-proxy's 30 s drain + 60 s; about 7.5 minutes with knative/base)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/versions.sh
source "$ROOT/scripts/versions.sh"
# shellcheck source=scripts/lib/common.sh
source "$ROOT/scripts/lib/common.sh"
# shellcheck source=scripts/lib/knative.sh
source "$ROOT/scripts/lib/knative.sh"

URL=""
HOST_HEADER=""
HEY_CPUS=""
LEVELS="1 2 4 8 16 32"
DURATION="15s"
PAUSE=2
IMAGE=""
OUT=""
LABEL=""
KNATIVE=false
SAMPLE_EVERY=2
COLD_STARTS=0
ZERO_TIMEOUT=""
SAMPLER_PID=""

usage() {
  sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
}

parse_args() {
  while [[ $# -gt 0 ]]; do
    case $1 in
      --url) URL=$2; shift 2 ;;
      --host) HOST_HEADER=$2; shift 2 ;;
      --hey-cpus) HEY_CPUS=$2; shift 2 ;;
      --levels) LEVELS=$2; shift 2 ;;
      --duration) DURATION=$2; shift 2 ;;
      --pause) PAUSE=$2; shift 2 ;;
      --image) IMAGE=$2; shift 2 ;;
      --out) OUT=$2; shift 2 ;;
      --label) LABEL=$2; shift 2 ;;
      --knative) KNATIVE=true; shift ;;
      --sample-every) SAMPLE_EVERY=$2; shift 2 ;;
      --cold-starts) COLD_STARTS=$2; shift 2 ;;
      --zero-timeout) ZERO_TIMEOUT=$2; shift 2 ;;
      -h | --help) usage; exit 0 ;;
      *) die "unknown option $1 (see --help)" ;;
    esac
  done
  local level
  for level in $LEVELS; do
    [[ $level =~ ^[1-9][0-9]*$ ]] || die "--levels takes positive integers, got '$level'"
  done
  [[ $DURATION =~ ^[0-9]+(ms|s|m)$ ]] || die "--duration takes a duration like 15s or 1m, got '$DURATION'"
  [[ $COLD_STARTS =~ ^[0-9]+$ ]] || die "--cold-starts takes a count, got '$COLD_STARTS'"
  [[ -z $ZERO_TIMEOUT || $ZERO_TIMEOUT =~ ^[0-9]+$ ]] || die "--zero-timeout takes seconds, got '$ZERO_TIMEOUT'"
  if [[ $COLD_STARTS -gt 0 && $KNATIVE != true ]]; then die "--cold-starts needs --knative"; fi
  [[ -n $LABEL ]] || LABEL=$([[ $KNATIVE == true ]] && echo knative || echo local)
  [[ -n $OUT ]] || OUT="$ROOT/bench/results/load-$(date -u +%Y%m%dT%H%M%SZ)"
}

check_tools() {
  ensure_commands hey:hey curl:curl node:nodejs
  if [[ -n $HEY_CPUS ]] && ! command -v taskset >/dev/null 2>&1; then
    die "--hey-cpus needs taskset, which Linux has and macOS does not"
  fi
  if [[ $KNATIVE == true ]]; then
    command -v kubectl >/dev/null 2>&1 || die "kubectl not found; see scripts/minikube-up.sh"
  fi
}

# On Knative the ksvc's host name only resolves to Kourier when the domain matches the
# tunnel's address, so the request goes to that address with the host name as Host header.
resolve_url() {
  [[ -n $URL ]] && return
  if [[ $KNATIVE != true ]]; then
    URL="http://127.0.0.1:8080/classify"
    return
  fi
  local ksvc gateway
  ksvc=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.status.url}')
  [[ -n $ksvc ]] || die "the classify Service has no URL yet; is it deployed (scripts/deploy.sh)?"
  gateway=$(gateway_address)
  [[ -n $gateway ]] || die "Kourier has no external address: run \`minikube tunnel -p $MINIKUBE_PROFILE\`, or port-forward it and pass --url and --host"
  URL="http://$gateway/classify"
  [[ -n $HOST_HEADER ]] || HOST_HEADER=${ksvc#*://}
}

prepare_image() {
  if [[ -z $IMAGE ]]; then
    IMAGE=$(cd "$ROOT" && node --import tsx bench/load-image.ts)
  fi
  [[ -r $IMAGE ]] || die "cannot read $IMAGE"
}

# curl arguments shared by the probe and the cold-start timer.
curl_args() {
  CURL_ARGS=(-sS -o /dev/null --max-time 120 -X POST -H 'Content-Type: image/jpeg' --data-binary "@$IMAGE")
  if [[ -n $HOST_HEADER ]]; then CURL_ARGS+=(-H "Host: $HOST_HEADER"); fi
}

probe() {
  local status
  status=$(curl "${CURL_ARGS[@]}" -w '%{http_code}' "$URL" || true)
  [[ $status == 200 ]] || die "POST $URL answered '$status', not 200; is the function running and ready?"
}

# json_string TEXT: TEXT as a JSON string literal.
json_string() {
  local text=${1//\\/\\\\}
  printf '"%s"' "${text//\"/\\\"}"
}

# The deployed classify Service's autoscaling settings, for the report's model: its
# annotations (a JSON map as kubectl prints it), containerConcurrency, timeoutSeconds and
# the per-pod throughput range it was sized with.
service_json() {
  local annotations cc timeout rps
  annotations=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.spec.template.metadata.annotations}')
  rps=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.metadata.annotations.klassify\.dev/pod-rps}')
  cc=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.spec.template.spec.containerConcurrency}')
  timeout=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath='{.spec.template.spec.timeoutSeconds}')
  [[ $annotations == "{"*"}" ]] || die "cannot read the classify Service's annotations (got '$annotations')"
  [[ $cc =~ ^[0-9]+$ ]] || cc=0
  [[ $timeout =~ ^[0-9]+$ ]] || timeout=300
  [[ $rps =~ ^[0-9.]+-[0-9.]+$ ]] || rps=""
  printf '{"annotations": %s, "containerConcurrency": %s, "timeoutSeconds": %s, "podRps": %s}' "$annotations" "$cc" "$timeout" "$(json_string "$rps")"
}

write_meta() {
  mkdir -p "$OUT/steps"
  : >"$OUT/steps.tsv"
  local cpus hey_version service=null bytes
  cpus=$(host_cpus 2>/dev/null || true)
  [[ $cpus =~ ^[0-9]+$ ]] || cpus=null
  hey_version=$(dpkg-query -W -f '${Version}' hey 2>/dev/null || brew list --versions hey 2>/dev/null || echo unknown)
  bytes=$(wc -c <"$IMAGE" | tr -d ' ')
  if [[ $KNATIVE == true ]]; then service=$(service_json); fi
  cat >"$OUT/meta.json" <<JSON
{
  "label": $(json_string "$LABEL"),
  "url": $(json_string "$URL"),
  "levels": $(json_string "$LEVELS"),
  "duration": $(json_string "$DURATION"),
  "image": $(json_string "$(basename "$IMAGE")"),
  "imageBytes": $bytes,
  "host": $(json_string "$(hostname)"),
  "os": $(json_string "$(os_name)"),
  "cpus": $cpus,
  "cpu": $(json_string "$(cpu_model)"),
  "loadavgBefore": $(json_string "$(load_average)"),
  "hey": $(json_string "$hey_version"),
  "started": $(json_string "$(date -u +%Y-%m-%dT%H:%M:%SZ)"),
  "service": $service
}
JSON
}

# Prints "ready pending total" for the classify Service's pods. Pending pods (no
# containerStatuses yet, or not scheduled for want of CPU) count; a kubectl error prints
# "nan nan nan" rather than pretending there are no pods.
count_pods() {
  local lines
  if ! lines=$(kube -n "$NAMESPACE" get pods -l serving.knative.dev/service=classify \
    -o jsonpath='{range .items[*]}{.status.phase}{" "}{.status.containerStatuses[*].ready}{"\n"}{end}' 2>/dev/null); then
    echo "nan nan nan"
    return
  fi
  awk 'NF { total++; if ($1 == "Pending") pending++; else if ($0 ~ /true/ && $0 !~ /false/) ready++ }
       END { printf "%d %d %d\n", ready, pending, total }' <<<"$lines"
}

sample_pods() {
  echo "epoch,ready,pending,total" >"$OUT/pods.csv"
  while true; do
    local ready pending total
    read -r ready pending total < <(count_pods)
    printf '%s,%s,%s,%s\n' "$(epoch_now)" "$ready" "$pending" "$total" >>"$OUT/pods.csv"
    sleep "$SAMPLE_EVERY"
  done
}

start_sampler() {
  [[ $KNATIVE == true ]] || return 0
  sample_pods &
  SAMPLER_PID=$!
}

stop_sampler() {
  if [[ -n $SAMPLER_PID ]]; then
    kill "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
    SAMPLER_PID=""
  fi
}

run_steps() {
  local level hey=(hey) hey_args=(-z "$DURATION" -m POST -T image/jpeg -D "$IMAGE")
  if [[ -n $HOST_HEADER ]]; then hey_args+=(-host "$HOST_HEADER"); fi
  if [[ -n $HEY_CPUS ]]; then hey=(taskset -c "$HEY_CPUS" hey); fi
  for level in $LEVELS; do
    log "concurrency $level for $DURATION (load average $(load_average))"
    local started ended
    started=$(epoch_now)
    "${hey[@]}" "${hey_args[@]}" -c "$level" "$URL" >"$OUT/steps/c$level.txt"
    ended=$(epoch_now)
    printf '%s\t%s\t%s\n' "$level" "$started" "$ended" >>"$OUT/steps.tsv"
    sleep "$PAUSE"
  done
}

# go_seconds DURATION: Go's duration syntax (5m, 1m30s, 90s, 0) in whole seconds.
go_seconds() {
  local d=$1 total=0 n unit
  [[ $d == 0 ]] && { echo 0; return; }
  [[ $d =~ ^([0-9]+(h|m|s))+$ ]] || die "cannot read the duration '$d'"
  while [[ $d =~ ^([0-9]+)(h|m|s)(.*)$ ]]; do
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
  done
  echo "$total"
}

# How long scale to zero takes after the last request, from the deployed Service. The KPA
# wants zero pods once a whole stable window (the window annotation, else 60 s) has seen no
# traffic; it then scales to zero after max(scale-to-zero grace period 30 s, the retention
# period) (serving's pkg/reconciler/autoscaling/kpa/scaler.go). The last pod's queue-proxy
# then drains for 30 s before the pod is gone; a minute more covers the rest of termination.
zero_timeout() {
  local annotations='{.spec.template.metadata.annotations}' window retention hold
  window=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath="${annotations%\}}.autoscaling\.knative\.dev/window}")
  retention=$(kube -n "$NAMESPACE" get ksvc classify -o jsonpath="${annotations%\}}.autoscaling\.knative\.dev/scale-to-zero-pod-retention-period}")
  hold=$(go_seconds "${retention:-0}")
  ((hold >= 30)) || hold=30
  echo $(($(go_seconds "${window:-60s}") + hold + 30 + 60))
}

wait_for_zero() {
  local waited=0 ready pending total
  while true; do
    read -r ready pending total < <(count_pods)
    [[ $total == 0 ]] && return 0
    [[ $waited -ge $ZERO_TIMEOUT ]] && die "classify still has $total pod(s) ($ready ready, $pending pending) after ${ZERO_TIMEOUT}s; is scale-to-zero enabled?"
    sleep 5
    waited=$((waited + 5))
  done
}

run_cold_starts() {
  [[ $COLD_STARTS -gt 0 ]] || return 0
  echo "run,seconds,status" >"$OUT/cold-starts.csv"
  local run result
  [[ -n $ZERO_TIMEOUT ]] || ZERO_TIMEOUT=$(zero_timeout)
  for ((run = 1; run <= COLD_STARTS; run++)); do
    log "cold start $run/$COLD_STARTS: waiting for classify to scale to zero (up to ${ZERO_TIMEOUT}s)"
    wait_for_zero
    result=$(curl "${CURL_ARGS[@]}" -w '%{time_total},%{http_code}' "$URL" || echo "nan,000")
    log "cold start $run: ${result%,*} s, HTTP ${result#*,}"
    printf '%s,%s\n' "$run" "$result" >>"$OUT/cold-starts.csv"
  done
}

render() {
  (cd "$ROOT" && node --import tsx bench/load-report.ts "$OUT" "$LABEL") || die "the report failed; the raw results are in $OUT"
  log "results in $OUT: report.html (open it in a browser), results.json, results.csv, *.svg"
}

main() {
  parse_args "$@"
  check_tools
  resolve_url
  prepare_image
  curl_args
  probe
  write_meta
  trap stop_sampler EXIT
  start_sampler
  run_steps
  run_cold_starts
  stop_sampler
  render
}

# Sourced by the tests to call single steps; run as a script otherwise.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then main "$@"; fi
