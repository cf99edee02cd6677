// Local copies of what klassify otherwise downloads, for offline machines and CI. One
// variable, KLASSIFY_MIRROR, names a folder laid out like the public data:
//   models/mobilenet_v1_0.75_224/…   fixtures/images/…   knative/serving-knative-v1.22.1/…   oip/…
// and a per-kind variable, when set, overrides it for its kind. Relative paths are taken
// from the current directory (the clone's root under npm).
import path from 'node:path';

export const MIRROR_VARIABLE = 'KLASSIFY_MIRROR';

export interface MirrorKind {
  /** Overrides KLASSIFY_MIRROR for this kind: the folder itself, not its parent. */
  variable: string;
  /** Where this kind sits inside KLASSIFY_MIRROR. */
  folder: string;
  /** The command a message's example runs. */
  command: string;
}

export const MODEL_MIRROR: MirrorKind = { variable: 'KLASSIFY_MODEL_MIRROR', folder: 'models', command: 'npm start' };
export const FIXTURES_MIRROR: MirrorKind = { variable: 'KLASSIFY_FIXTURES_MIRROR', folder: 'fixtures/images', command: 'npm test' };
export const KNATIVE_MIRROR: MirrorKind = { variable: 'KLASSIFY_KNATIVE_MIRROR', folder: 'knative', command: 'npm test' };
export const OIP_MIRROR: MirrorKind = { variable: 'KLASSIFY_OIP_MIRROR', folder: 'oip', command: 'npm test' };

/** The folder to copy `kind` from, absolute; undefined: download it. */
export function mirrorDir(kind: MirrorKind, env: Record<string, string | undefined>): string | undefined {
  const own = env[kind.variable]?.trim();
  if (own) return path.resolve(own);
  const all = env[MIRROR_VARIABLE]?.trim();
  return all ? path.resolve(all, kind.folder) : undefined;
}

/** How to point `kind` at a local copy whose folder holds `holds`: every download error ends with it. */
export function mirrorHint(kind: MirrorKind, holds: string): string {
  return `Set ${MIRROR_VARIABLE} to a folder whose ${kind.folder}/ holds ${holds} ` +
    `(or ${kind.variable} to that ${kind.folder}/ folder itself), e.g. \`${MIRROR_VARIABLE}=/data/klassify-mirror ${kind.command}\`.`;
}
