// PATH shims for the deployment scripts: fake `minikube`, `kubectl` (and `podman`) that
// record each call, one line per call, and answer the few queries the scripts make.
// Knobs (environment of the script under test):
//   FAKE_MINIKUBE_STATUS   what `minikube status` prints (default Stopped, exit 7)
//   FAKE_FAIL              a substring: the call whose arguments contain it exits 1
//   FAKE_PODMAN_LABEL      what `podman image inspect` prints (unset: no such image)
//   FAKE_KUBE_VERSION      the server's gitVersion in `kubectl version -o json`
//   FAKE_EVENTS_TOKEN      the token in the Secret klassify-ui-events (unset: no Secret)
//   FAKE_GATEWAY           Kourier's LoadBalancer address (unset: no tunnel)
//   FAKE_PODS              `get pods` output, one "phase ready…" line per pod (\n escapes)
//   FAKE_RETENTION         the classify Service's scale-to-zero-pod-retention-period
//   FAKE_WINDOW            the classify Service's autoscaling window
// `kubectl apply -k DIR` copies DIR's files to $SHIM_DIR/applied-k/.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(fileURLToPath(new URL('../..', import.meta.url)));

const PRELUDE = `#!/usr/bin/env bash
name=\${0##*/}
printf '%s %s\\n' "$name" "$*" >> "$SHIM_DIR/calls.log"
if [[ -n \${FAKE_FAIL:-} && "$*" == *"$FAKE_FAIL"* ]]; then echo "$name: fake failure" >&2; exit 1; fi
`;

const SHIMS: Record<string, string> = {
  minikube: `${PRELUDE}
case "$*" in
  *" status "*) echo "\${FAKE_MINIKUBE_STATUS:-Stopped}"; [[ \${FAKE_MINIKUBE_STATUS:-} == Running ]] || exit 7 ;;
esac
exit 0`,
  kubectl: `${PRELUDE}
if [[ " $* " == *" -f - "* ]]; then cat > "$SHIM_DIR/applied.yaml"; fi
if [[ " $* " == *" apply -k "* ]]; then mkdir -p "$SHIM_DIR/applied-k"; cp "\${*: -1}"/* "$SHIM_DIR/applied-k/"; fi
case "$*" in
  *"version -o json"*) printf '{"serverVersion": {"gitVersion": "%s"}}\n' "\${FAKE_KUBE_VERSION:-v0.0.0}" ;;
  *"get secret klassify-ui-events"*) [[ -n \${FAKE_EVENTS_TOKEN:-} ]] && printf '%s' "$(printf '%s' "$FAKE_EVENTS_TOKEN" | base64 -w0)" ;;
  *"get service kourier"*) printf '%s' "\${FAKE_GATEWAY:-}" ;;
  *"get pods"*) printf '%b' "\${FAKE_PODS:-}" ;;
  *"scale-to-zero-pod-retention-period"*) printf '%s' "\${FAKE_RETENTION:-}" ;;
  *"knative\\.dev/window"*) printf '%s' "\${FAKE_WINDOW:-}" ;;
  *"get ksvc ui -o jsonpath={.status.url}"*) printf 'http://ui.klassify.127.0.0.1.sslip.io' ;;
  *"get ksvc classify -o jsonpath={.status.url}"*) printf 'http://classify.klassify.127.0.0.1.sslip.io' ;;
  *latestReadyRevisionName*) printf 'classify-00002' ;;
  *"get broker"*) printf 'http://broker-ingress.knative-eventing.svc.cluster.local/klassify/default' ;;
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
exit 0`,
};

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

/**
 * Runs a script with the shims first on PATH. `without` lists commands that must look
 * missing: no shim is made for them, and PATH directories that hold them are dropped.
 */
export function runScript(script: string, args: string[] = [], env: Record<string, string> = {}, without: string[] = []): Run {
  const dir = mkdtempSync(path.join(tmpdir(), 'klassify-shims-'));
  for (const [name, body] of Object.entries(SHIMS)) {
    if (without.includes(name)) continue;
    writeFileSync(path.join(dir, name), body);
    chmodSync(path.join(dir, name), 0o755);
  }
  const systemPath = (process.env.PATH ?? '')
    .split(':')
    .filter((p) => p && !without.some((cmd) => existsSync(path.join(p, cmd))));
  const result = spawnSync('bash', [path.join(ROOT, script), ...args], {
    encoding: 'utf8',
    env: {
      PATH: [dir, ...systemPath].join(':'),
      HOME: dir,
      SHIM_DIR: dir,
      // The scripts' own defaults, pinned so a developer's environment cannot leak in.
      MINIKUBE_PROFILE: 'klassify',
      MINIKUBE_CPUS: '6',
      MINIKUBE_MEMORY: '8g',
      KLASSIFY_IMAGE_TAG: 'test-tag',
      KLASSIFY_RETRY_PAUSE: '0',
      FAKE_KUBE_VERSION: versions().KUBERNETES_VERSION,
      ...env,
    },
    timeout: 30_000,
  });
  const log = path.join(dir, 'calls.log');
  const applied = path.join(dir, 'applied.yaml');
  const appliedK = path.join(dir, 'applied-k');
  const run: Run = {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    calls: existsSync(log) ? readFileSync(log, 'utf8').trimEnd().split('\n').filter(Boolean) : [],
    applied: existsSync(applied) ? readFileSync(applied, 'utf8') : undefined,
    kustomization: existsSync(appliedK)
      ? Object.fromEntries(readdirSync(appliedK).map((f) => [f, readFileSync(path.join(appliedK, f), 'utf8')]))
      : undefined,
  };
  rmSync(dir, { recursive: true, force: true });
  return run;
}

/** The pinned values from scripts/versions.sh, read the way bash would see them. */
export function versions(): Record<string, string> {
  const text = readFileSync(path.join(ROOT, 'scripts/versions.sh'), 'utf8');
  return Object.fromEntries([...text.matchAll(/^([A-Z_]+)="(?:\$\{[A-Z_]+:-)?([^"}]*)\}?"$/gm)].map((m) => [m[1], m[2]]));
}
