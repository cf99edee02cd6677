// The CustomResourceDefinitions of the pinned Knative release (scripts/versions.sh), fetched
// like the model: from the mirror (KLASSIFY_MIRROR's knative/, or KLASSIFY_KNATIVE_MIRROR), else from the
// release tag's raw URL, and checked against the SHA-256 pinned here before use.
// The mirror's layout is <repo>-<tag>/<file>, e.g. serving-knative-v1.22.1/service.yaml.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { fetchAssets, type AssetSet } from '../../functions/classify/src/model/assets.ts';
import { KNATIVE_MIRROR, mirrorDir } from '../../functions/classify/src/model/mirror.ts';
import { ROOT, versions } from '../../scripts/test/shims.ts';

/** SHA-256 of each CRD file at each release tag we have pinned. */
export const CRD_SHA256: Record<string, Record<string, Record<string, string>>> = {
  serving: {
    'knative-v1.22.1': { 'service.yaml': 'a931dda52f4ac376196e5bfc238214b8a54308b37336af3fdd41b002960a1bca' },
    'knative-v1.21.0': { 'service.yaml': 'a931dda52f4ac376196e5bfc238214b8a54308b37336af3fdd41b002960a1bca' },
  },
  eventing: {
    'knative-v1.22.2': {
      'broker.yaml': '12514b62f568d9802519d29885fb222bfc5f5f6e97825d4dab42f29ea110edd3',
      'trigger.yaml': 'fdf6c668d4fa1182bbceb417a70ceeccd9bfc1bf893f2fddf247933dcec6a5f1',
    },
    'knative-v1.21.0': {
      'broker.yaml': '12514b62f568d9802519d29885fb222bfc5f5f6e97825d4dab42f29ea110edd3',
      'trigger.yaml': 'fdf6c668d4fa1182bbceb417a70ceeccd9bfc1bf893f2fddf247933dcec6a5f1',
    },
  },
};

const CRD_PATH = { serving: 'config/core/300-resources/', eventing: 'config/core/resources/' } as const;

export function crdAssets(repo: 'serving' | 'eventing', tag: string): AssetSet {
  const sha256 = CRD_SHA256[repo][tag];
  if (!sha256) throw new Error(`no SHA-256 pinned for ${repo} ${tag}: add the CRD files' sums to knative/test/crds.ts`);
  return {
    what: `Knative ${repo} ${tag} CRDs`,
    baseUrl: `https://raw.githubusercontent.com/knative/${repo}/${tag}/${CRD_PATH[repo]}`,
    sha256,
    mirror: { kind: KNATIVE_MIRROR, holds: Object.keys(sha256).map((file) => `${repo}-${tag}/${file}`).join(', ') },
  };
}

export interface Crd {
  group: string;
  kind: string;
  versions: Array<{ name: string; schema: Record<string, any> }>;
}

/** Ensures the pinned release's CRDs are in .cache/knative and returns them parsed. */
export async function loadCrds(mirror = mirrorDir(KNATIVE_MIRROR, process.env), cache = path.join(ROOT, '.cache/knative')): Promise<Crd[]> {
  const v = versions();
  const sets = [
    ['serving', v.KNATIVE_SERVING_VERSION],
    ['eventing', v.KNATIVE_EVENTING_VERSION],
  ] as const;
  const crds: Crd[] = [];
  for (const [repo, tag] of sets) {
    const folder = `${repo}-${tag}`;
    const set = crdAssets(repo, tag);
    const dest = await fetchAssets(set, { dest: path.join(cache, folder), mirror: mirror && path.join(mirror, folder) });
    for (const file of Object.keys(set.sha256)) {
      const doc = parse(readFileSync(path.join(dest, file), 'utf8'));
      crds.push({
        group: doc.spec.group,
        kind: doc.spec.names.kind,
        versions: doc.spec.versions.map((ver: any) => ({ name: ver.name, schema: ver.schema.openAPIV3Schema })),
      });
    }
  }
  return crds;
}
