// PATH shims for the deployment scripts: fake `minikube`, `kubectl`, `docker` (and `podman`)
// that record each call, one line per call, and answer the few queries the scripts make.
// Knobs (environment of the script under test):
//   FAKE_MINIKUBE_STATUS   what `minikube status` prints: Running, Stopped (exit 7) or
//                          Nonexistent (the default: exit 85, as for a profile never made)
//   FAKE_MINIKUBE_DRIVER   what `minikube config get driver` prints (unset: none configured)
//   FAKE_FAIL              a substring: the call whose arguments contain it exits 1
//   FAKE_PODMAN_LABEL      what `podman image inspect` prints (unset: no such image)
//   FAKE_KUBE_VERSION      the server's gitVersion in `kubectl version -o json`
//   FAKE_EVENTS_TOKEN      the token in the Secret klassify-ui-events (unset: no Secret)
//   FAKE_GATEWAY           Kourier's LoadBalancer address (unset: no tunnel)
//   FAKE_CLUSTER_IP        Kourier's ClusterIP (default 10.96.12.7)
//   FAKE_DOMAIN            the routes' domain when no script has set one (127.0.0.1.sslip.io)
//   FAKE_ALLOCATABLE       the node's allocatable "CPU MEMORY" (default "6 6291456Ki")
//   FAKE_GPUS              the node's allocatable nvidia.com/gpu (unset: none)
//   FAKE_PODS              `get pods` output, one "phase ready…" line per pod (\n escapes)
//   FAKE_RETENTION         the classify Service's scale-to-zero-pod-retention-period
//   FAKE_WINDOW            the classify Service's autoscaling window
//   FAKE_ANNOTATIONS       the classify Service's template annotations, as kubectl prints the map
//   FAKE_DOCKER            `docker info` CPUs and memory in bytes (default "8 8589934592", a
//                          Docker Desktop VM of 8 CPUs and 8 GiB); "down": the daemon is not running
//   FAKE_DOCKER_OS         `docker info` OperatingSystem and SecurityOptions (default "Ubuntu 24.04")
//   FAKE_DOCKER_NODE       the profile label on the docker container `minikube` runs
//                          (default klassify: the profile's node is a docker container)
//   FAKE_DOCKER_NANOCPUS   that container's CPU quota (default 6000000000: 6 CPUs)
//   FAKE_HOST_CPUS, FAKE_HOST_MEMORY_MIB   the machine itself, for VM drivers (getconf on
//                          Linux, sysctl on the macOS-like platform; default 8 and 16384)
// `kubectl apply -k DIR` copies DIR's files to $SHIM_DIR/applied-k/.
//
// Every script can also run on a macOS-like platform (`platform: 'macos'`): GNU bash 3.2
// (shared/tools/bash-3.2) first on PATH as `bash`, BSD-behaving stand-ins for the tools
// that differ (realpath without --relative-to, date without %N, sed -i that needs its
// suffix, base64 without -d and -w, uname -s Darwin, sysctl for CPUs and memory, the
// one-true-awk that macOS ships), and no nproc, timeout, tac, lscpu or dpkg-query.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findProgram, requireProgram } from '../../test/programs.ts';

export const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

const PRELUDE = `#!/usr/bin/env bash
name=\${0##*/}
printf '%s %s\\n' "$name" "$*" >> "$SHIM_DIR/calls.log"
if [[ -n \${FAKE_FAIL:-} && "$*" == *"$FAKE_FAIL"* ]]; then echo "$name: fake failure" >&2; exit 1; fi
`;

const SHIMS: Record<string, string> = {
  minikube: `${PRELUDE}
case "$*" in
  *" status "*)
    case \${FAKE_MINIKUBE_STATUS:-Nonexistent} in
      Running) echo Running ;;
      Nonexistent) echo "Profile \\"klassify\\" not found. Run \\"minikube profile list\\" to view all profiles."; exit 85 ;;
      *) echo "$FAKE_MINIKUBE_STATUS"; exit 7 ;;
    esac ;;
  "config get driver") [[ -n \${FAKE_MINIKUBE_DRIVER:-} ]] || exit 14; echo "$FAKE_MINIKUBE_DRIVER" ;;
esac
exit 0`,
  kubectl: `${PRELUDE}
if [[ " $* " == *" -f - "* ]]; then cat > "$SHIM_DIR/applied.yaml"; fi
if [[ " $* " == *" apply -k "* ]]; then mkdir -p "$SHIM_DIR/applied-k"; cp "\${*: -1}"/* "$SHIM_DIR/applied-k/"; fi
if [[ "$*" == *"patch configmap/config-domain"* ]]; then
  domain=\${*: -1}; domain=\${domain#*\\"value\\":\\{\\"}; printf '%s' "\${domain%%\\"*}" > "$SHIM_DIR/domain"
fi
domain=\${FAKE_DOMAIN:-127.0.0.1.sslip.io}
[[ -f $SHIM_DIR/domain ]] && domain=$(cat "$SHIM_DIR/domain")
case "$*" in
  *"version -o json"*) printf '{"serverVersion": {"gitVersion": "%s"}}\\n' "\${FAKE_KUBE_VERSION:-v0.0.0}" ;;
  *"get secret klassify-ui-events"*) [[ -n \${FAKE_EVENTS_TOKEN:-} ]] && printf '%s' "$(printf '%s' "$FAKE_EVENTS_TOKEN" | base64 | tr -d '\\n')" ;;
  *"get service kourier -o jsonpath={.spec.clusterIP}"*) printf '%s' "\${FAKE_CLUSTER_IP:-10.96.12.7}" ;;
  *"get service kourier"*) printf '%s' "\${FAKE_GATEWAY:-}" ;;
  *"get nodes"*"nvidia"*) printf '%s' "\${FAKE_GPUS:-}" ;;
  *"get nodes"*"allocatable"*) printf '%s' "\${FAKE_ALLOCATABLE:-6 6291456Ki}" ;;
  *"get pods"*) printf '%b' "\${FAKE_PODS:-}" ;;
  *"scale-to-zero-pod-retention-period"*) printf '%s' "\${FAKE_RETENTION:-}" ;;
  *"knative\\.dev/window"*) printf '%s' "\${FAKE_WINDOW:-}" ;;
  *"get ksvc classify -o jsonpath={.spec.template.metadata.annotations}"*)
    annotations='{"autoscaling.knative.dev/max-scale":"5"}'
    printf '%s' "\${FAKE_ANNOTATIONS:-$annotations}" ;;
  *"get ksvc classify -o jsonpath={.spec.template.spec.containerConcurrency}"*) printf '2' ;;
  *"get ksvc classify -o jsonpath={.spec.template.spec.timeoutSeconds}"*) printf '30' ;;
  *"get ksvc classify -o jsonpath={.metadata.annotations.klassify"*) printf '30-70' ;;
  *"get ksvc ui -o jsonpath={.status.url}"*) printf 'http://ui.klassify.%s' "$domain" ;;
  *"get ksvc classify -o jsonpath={.status.url}"*) printf 'http://classify.klassify.%s' "$domain" ;;
  *latestReadyRevisionName*) printf 'classify-00002' ;;
  *"get broker"*) printf 'http://broker-ingress.knative-eventing.svc.cluster.local/klassify/default' ;;
esac
exit 0`,
  docker: `${PRELUDE}
[[ \${FAKE_DOCKER:-} == down ]] && { echo "Cannot connect to the Docker daemon" >&2; exit 1; }
case "$*" in
  "info --format {{.NCPU}} {{.MemTotal}}") echo "\${FAKE_DOCKER:-8 8589934592}" ;;
  "info --format {{.NCPU}}") echo "\${FAKE_DOCKER:-8 8589934592}" | cut -d' ' -f1 ;;
  "info --format {{.OperatingSystem}} {{.SecurityOptions}}") echo "\${FAKE_DOCKER_OS:-Ubuntu 24.04} [name=seccomp,profile=builtin]" ;;
  "container inspect --format {{.HostConfig.NanoCpus}} "*) echo "\${FAKE_DOCKER_NANOCPUS:-6000000000}" ;;
  "container inspect "*) [[ -n \${FAKE_DOCKER_NODE-klassify} ]] || exit 1; echo "\${FAKE_DOCKER_NODE-klassify}" ;;
esac
exit 0`,
  // The base-image script needs root and real downloads; these stand in for both.
  id: `#!/usr/bin/env bash
[[ "$*" == "-u" ]] && { echo "\${FAKE_UID:-0}"; exit 0; }
exec /usr/bin/id "$@"`,
  npm: `${PRELUDE}
spec=\${*: -1}
[[ "$*" == *"pack "* ]] && : > "\${spec%@*}-\${spec#*@}.tgz"
exit 0`,
  mmdebstrap: `${PRELUDE}
: > "\${*: -2:1}"
exit 0`,
  podman: `${PRELUDE}
if [[ "$*" == *"image inspect "* ]]; then
  [[ -n \${FAKE_PODMAN_LABEL:-} ]] || exit 125
  echo "$FAKE_PODMAN_LABEL"; exit 0
fi
[[ "$*" == "container inspect "* ]] && exit 125
exit 0`,
};

/** The machine, for VM drivers, where a Linux script asks getconf. */
const LINUX_HOST: Record<string, string> = {
  getconf: `#!/bin/bash
case "$1" in
  _NPROCESSORS_ONLN) [[ -n \${FAKE_HOST_CPUS:-} ]] && { echo "$FAKE_HOST_CPUS"; exit 0; } ;;
  _PHYS_PAGES) [[ -n \${FAKE_HOST_MEMORY_MIB:-} ]] && { echo $((FAKE_HOST_MEMORY_MIB * 256)); exit 0; } ;;
  PAGE_SIZE) [[ -n \${FAKE_HOST_MEMORY_MIB:-} ]] && { echo 4096; exit 0; } ;;
esac
exec /usr/bin/getconf "$@"`,
};

// ---------------------------------------------------------------------------------------
// The macOS-like platform

/** Tools macOS does not have: hidden from PATH. */
const NOT_ON_MACOS = ['nproc', 'timeout', 'gtimeout', 'tac', 'lscpu', 'dpkg-query', 'apt-get', 'shuf', 'sha256sum', 'md5sum', 'stdbuf', 'numfmt', 'flock', 'envsubst', 'free', 'ip'];

const reject = (what: string) => `{ echo "$(basename "$0"): illegal option -- ${what} (a GNU-only flag; BSD and macOS do not have it)" >&2; exit 64; }`;

/** BSD-behaving stand-ins; each runs the GNU tool where the behaviour is the same. */
const BSD: Record<string, string> = {
  uname: `#!/bin/bash
case "\${1:--s}" in
  -s) echo Darwin ;;
  -m | -p) echo arm64 ;;
  -r) echo 24.1.0 ;;
  -a) echo "Darwin macbook 24.1.0 Darwin Kernel Version 24.1.0 arm64" ;;
  *) ${reject('$1')} ;;
esac`,
  sysctl: `#!/bin/bash
[[ $1 == -n ]] || ${reject('$1')}
case "$2" in
  hw.ncpu | hw.logicalcpu) echo "\${FAKE_HOST_CPUS:-8}" ;;
  hw.memsize) echo $(( \${FAKE_HOST_MEMORY_MIB:-16384} * 1048576 )) ;;
  machdep.cpu.brand_string) echo "Apple M2" ;;
  vm.loadavg) echo "{ 1.52 1.31 1.20 }" ;;
  *) echo "sysctl: unknown oid '$2'" >&2; exit 1 ;;
esac`,
  // BSD realpath [-q] path...: no --relative-to, no -m, -e, -s.
  realpath: `#!/bin/bash
for a; do case $a in -q) ;; -*) ${reject('$a')} ;; esac; done
exec /usr/bin/realpath "$@"`,
  // BSD date: %N is not a conversion (it prints N); no -d/--date, -I or long options.
  date: `#!/bin/bash
args=()
for a; do
  case $a in
    +*) args+=("\${a//%N/N}") ;;
    -d | --* | -I*) ${reject('$a')} ;;
    *) args+=("$a") ;;
  esac
done
exec /usr/bin/date "\${args[@]}"`,
  // BSD sed: -i takes its suffix as the next argument ('' for none); -E, not -r; no long
  // options; GNU's extensions to basic regular expressions are off (--posix).
  sed: `#!/bin/bash
args=(--posix)
while [[ $# -gt 0 ]]; do
  case $1 in
    -i) [[ $# -ge 2 && ( -z $2 || $2 == .* ) ]] || { echo "sed: -i needs a backup suffix argument ('' for none) on BSD" >&2; exit 1; }
        args+=("-i$2"); shift 2 ;;
    -r | -z | -s | -u | --*) ${reject('$1')} ;;
    *) args+=("$1"); shift ;;
  esac
done
exec /usr/bin/sed "\${args[@]}"`,
  grep: `#!/bin/bash
for a; do case $a in --perl-regexp) ${reject('$a')} ;; --*) ;; -*P*) ${reject('$a')} ;; esac; done
exec /usr/bin/grep "$@"`,
  stat: `#!/bin/bash
for a; do case $a in -c | --*) ${reject('$a')} ;; esac; done
exec /usr/bin/stat "$@"`,
  readlink: `#!/bin/bash
for a; do case $a in -f | -e | -m | --*) ${reject('$a')} ;; esac; done
exec /usr/bin/readlink "$@"`,
  // macOS 12 and older read -d as --debug: only -D and --decode decode everywhere.
  base64: `#!/bin/bash
args=()
for a; do case $a in -d | -w* | --wrap* | --ignore-garbage) ${reject('$a')} ;; -D) args+=(--decode) ;; *) args+=("$a") ;; esac; done
exec /usr/bin/base64 "\${args[@]}"`,
  xargs: `#!/bin/bash
for a; do case $a in -r | --no-run-if-empty) ${reject('$a')} ;; esac; done
exec /usr/bin/xargs "$@"`,
  // BSD head takes no negative counts ("all but the last N").
  head: `#!/bin/bash
prev=""
for a; do
  case $a in -n-*) ${reject('$a')} ;; esac
  if [[ $prev == -n && $a == -* ]]; then ${reject('-n $a')}; fi
  prev=$a
done
exec /usr/bin/head "$@"`,
  mktemp: `#!/bin/bash
for a; do case $a in --*) ${reject('$a')} ;; esac; done
exec /usr/bin/mktemp "$@"`,
};

export type Platform = 'linux' | 'macos';

/** bash 3.2 as macOS runs it: KLASSIFY_BASH32, the mirror's copy, or ../shared next to the repository. */
export function bash32(): string | undefined {
  const mirror = process.env.KLASSIFY_MIRROR;
  return findProgram([
    ...(process.env.KLASSIFY_BASH32 ? [process.env.KLASSIFY_BASH32] : []),
    ...(mirror ? [path.join(mirror, 'tools/bash-3.2/bash')] : []),
    path.resolve(ROOT, '../shared/tools/bash-3.2/bash'),
  ]);
}

/**
 * The platforms to run the script tests on: Linux always; the macOS-like one when bash 3.2
 * and the one-true-awk are here (outside CI a missing one skips it with a printed reason, in
 * CI it fails, through requireProgram).
 */
export function platforms(suiteName: string): Platform[] {
  const bash = requireProgram({
    name: 'bash 3.2',
    env: 'KLASSIFY_BASH32',
    candidates: [bash32() ?? path.resolve(ROOT, '../shared/tools/bash-3.2/bash')],
    install: 'It is in the shared mirror (tools/bash-3.2); set KLASSIFY_BASH32 to its path.',
    suite: `${suiteName} (macOS-like: bash 3.2, BSD tools)`,
  });
  const awk = bash && requireProgram({
    name: 'original-awk',
    candidates: ['original-awk'],
    install: 'Install it with `apt-get install -y original-awk` (the awk macOS ships).',
    suite: `${suiteName} (macOS-like: bash 3.2, BSD tools)`,
  });
  return bash && awk ? ['linux', 'macos'] : ['linux'];
}

const farms = new Map<string, string>();

/**
 * A PATH directory for the macOS-like platform: the BSD stand-ins, bash 3.2 as `bash`,
 * original-awk as `awk`, and a link to every other program on this machine's PATH except
 * those macOS lacks and those in `without`. Made once per set of `without` and kept for the
 * process (removed at exit).
 */
function macosPath(without: string[]): string {
  const key = without.join(',');
  const cached = farms.get(key);
  if (cached) return cached;
  const dir = mkdtempSync(path.join(tmpdir(), 'klassify-macos-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  for (const [name, body] of Object.entries(BSD)) writeExecutable(dir, name, body);
  symlinkSync(bash32()!, path.join(dir, 'bash'));
  symlinkSync(findProgram(['original-awk'])!, path.join(dir, 'awk'));
  const skip = new Set([...NOT_ON_MACOS, ...without]);
  for (const p of (process.env.PATH ?? '').split(':')) {
    if (!p || !existsSync(p)) continue;
    for (const name of readdirSync(p)) {
      const target = path.join(dir, name);
      if (skip.has(name) || existsSync(target)) continue;
      try {
        symlinkSync(path.join(p, name), target);
      } catch {
        // A name we cannot link is one the scripts do not use.
      }
    }
  }
  farms.set(key, dir);
  return dir;
}

function writeExecutable(dir: string, name: string, body: string) {
  writeFileSync(path.join(dir, name), body);
  chmodSync(path.join(dir, name), 0o755);
}

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
  /** Each shimmed call as "<command> <args>". */
  calls: string[];
  /** What was piped into `kubectl apply -f -`, if anything. */
  applied: string | undefined;
  /** The files of the kustomization applied with `kubectl apply -k`, by name. */
  kustomization: Record<string, string> | undefined;
}

export interface RunOptions {
  /** Commands that must look missing: no shim is made for them, nor are they on PATH. */
  without?: string[];
  /** More stand-ins, by name (first on PATH): a script body each. */
  shims?: Record<string, string>;
  platform?: Platform;
  timeoutMs?: number;
}

interface Prepared {
  dir: string;
  bash: string;
  argv: string[];
  env: Record<string, string>;
}

function prepare(script: string, args: string[], env: Record<string, string>, options: RunOptions): Prepared {
  const { without = [], platform = 'linux', shims = {} } = options;
  const dir = mkdtempSync(path.join(tmpdir(), 'klassify-shims-'));
  for (const [name, body] of Object.entries({ ...SHIMS, ...shims })) if (!without.includes(name)) writeExecutable(dir, name, body);
  let pathDirs: string[];
  let bash: string;
  if (platform === 'macos') {
    pathDirs = [dir, macosPath(without)];
    bash = bash32()!;
  } else {
    for (const [name, body] of Object.entries(LINUX_HOST)) writeExecutable(dir, name, body);
    pathDirs = [dir, ...(process.env.PATH ?? '').split(':').filter((p) => p && !without.some((cmd) => existsSync(path.join(p, cmd))))];
    bash = 'bash';
  }
  const passed = ['KLASSIFY_MODEL_MIRROR', 'KLASSIFY_FIXTURES_MIRROR', 'KLASSIFY_MIRROR'].filter((k) => process.env[k]);
  return {
    dir,
    bash,
    argv: [path.join(ROOT, script), ...args],
    env: {
      PATH: pathDirs.join(':'),
      HOME: dir,
      SHIM_DIR: dir,
      // The scripts' own defaults, pinned so a developer's environment cannot leak in.
      MINIKUBE_PROFILE: 'klassify',
      KLASSIFY_IMAGE_TAG: 'test-tag',
      KLASSIFY_RETRY_PAUSE: '0',
      FAKE_KUBE_VERSION: versions().KUBERNETES_VERSION,
      ...Object.fromEntries(passed.map((k) => [k, process.env[k]!])),
      ...env,
    },
  };
}

/** What the run left in the shims' folder, then the folder removed. */
function collect(p: Prepared, status: number | null, stdout: string, stderr: string): Run {
  try {
    const log = path.join(p.dir, 'calls.log');
    const applied = path.join(p.dir, 'applied.yaml');
    const appliedK = path.join(p.dir, 'applied-k');
    return {
      status,
      stdout,
      stderr,
      calls: existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n').filter(Boolean) : [],
      applied: existsSync(applied) ? readFileSync(applied, 'utf8') : undefined,
      kustomization: existsSync(appliedK)
        ? Object.fromEntries(readdirSync(appliedK).map((f) => [f, readFileSync(path.join(appliedK, f), 'utf8')]))
        : undefined,
    };
  } finally {
    rmSync(p.dir, { recursive: true, force: true });
  }
}

/** Runs a script with the shims first on PATH, on the chosen platform. */
export function runScript(script: string, args: string[] = [], env: Record<string, string> = {}, options: RunOptions = {}): Run {
  const p = prepare(script, args, env, options);
  let result: ReturnType<typeof spawnSync>;
  try {
    result = spawnSync(p.bash, p.argv, { encoding: 'utf8', env: p.env, timeout: options.timeoutMs ?? 30_000 });
  } catch (err) {
    rmSync(p.dir, { recursive: true, force: true });
    throw err;
  }
  return collect(p, result.status, String(result.stdout), String(result.stderr) + (result.error ? `\n(spawn: ${result.error.message})` : ''));
}

/**
 * The same, without blocking this process: for scripts that talk to a server running in
 * the test process. Killed (and reported as such) after `timeoutMs`.
 */
export function runScriptAsync(script: string, args: string[] = [], env: Record<string, string> = {}, options: RunOptions = {}): Promise<Run> {
  const p = prepare(script, args, env, options);
  return new Promise((resolve, reject) => {
    const child = spawn(p.bash, p.argv, { env: p.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => {
      stderr += `\n(killed after ${options.timeoutMs ?? 30_000} ms)`;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 30_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      rmSync(p.dir, { recursive: true, force: true });
      reject(err);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve(collect(p, status, stdout, stderr));
    });
  });
}

/** The pinned values from scripts/versions.sh, read the way bash would see them. */
export function versions(): Record<string, string> {
  const text = readFileSync(path.join(ROOT, 'scripts/versions.sh'), 'utf8');
  return Object.fromEntries([...text.matchAll(/^([A-Z_]+)="(?:\$\{[A-Z_]+:-)?([^"}]*)\}?"$/gm)].map((m) => [m[1], m[2]]));
}
