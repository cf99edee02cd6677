// Validates manifests against the openAPIV3Schema of the pinned Knative CRDs with ajv, and
// reports unknown fields as `kubectl apply --validate=strict` would: an object schema with
// `properties` accepts no other key unless it says x-kubernetes-preserve-unknown-fields.
// Eventing's webhook decodes strictly itself, so for eventing kinds even preserved objects
// that list their properties are closed; only free-form maps (no properties) stay open.
// metadata is not in a CRD's schema (the API server checks ObjectMeta); the subset the
// manifests may use is described here. Serving's schema lists fields that its webhook
// accepts only behind a config-features flag ("This is accessible behind a feature flag -
// kubernetes.podspec-…" in the field's description); with the default flags those fail.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Crd } from './crds.ts';

type Schema = Record<string, any>;

const stringMap = { type: 'object', additionalProperties: { type: 'string' } };
const OBJECT_META: Schema = {
  type: 'object',
  additionalProperties: false,
  properties: { name: { type: 'string' }, namespace: { type: 'string' }, generateName: { type: 'string' }, labels: stringMap, annotations: stringMap },
};

const FEATURE_FLAG = /accessible behind a feature flag - ([\w.-]+)/;
const TYPE_META = { apiVersion: { type: 'string' }, kind: { type: 'string' } };

/** A CRD's structural schema as a JSON schema with kubectl's strictness. */
export function strictSchema(schema: Schema, closePreserved: boolean, enabledFlags: readonly string[] = [], root = true): Schema {
  if (!schema || typeof schema !== 'object') return schema;
  const flag = FEATURE_FLAG.exec(String(schema.description ?? ''))?.[1];
  if (flag && !enabledFlags.includes(flag)) return { featureFlag: flag };
  const inner = (s: Schema) => strictSchema(s, closePreserved, enabledFlags, false);
  const out: Schema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key.startsWith('x-kubernetes-') || key === 'description') continue;
    if (key === 'properties') {
      out.properties = Object.fromEntries(Object.entries(value as Schema).map(([k, s]) => [k, inner(s)]));
    } else if (key === 'items' || key === 'additionalProperties' || key === 'not') {
      out[key] = typeof value === 'object' ? inner(value) : value;
    } else if (key === 'allOf' || key === 'anyOf' || key === 'oneOf') {
      out[key] = (value as Schema[]).map(inner);
    } else out[key] = value;
  }
  const preserved = schema['x-kubernetes-preserve-unknown-fields'] === true;
  if (schema.properties && out.additionalProperties === undefined && (!preserved || closePreserved)) out.additionalProperties = false;
  if (schema['x-kubernetes-int-or-string']) {
    delete out.type;
    out.anyOf = [{ type: 'integer' }, { type: 'string' }];
  }
  if (root) out.properties = { ...out.properties, ...TYPE_META, metadata: OBJECT_META };
  return out;
}

/**
 * The config-features flags that Serving's release turns on by default (config-features
 * in serving-core.yaml); every other flagged field is refused on a default install.
 */
export const DEFAULT_ENABLED_FLAGS = ['kubernetes.podspec-volumes-emptydir'] as const;

export class CrdValidator {
  private readonly validators = new Map<string, ValidateFunction>();

  /** enabledFlags: the config-features flags the cluster turns on. */
  constructor(crds: Crd[], enabledFlags: readonly string[] = DEFAULT_ENABLED_FLAGS) {
    // Formats (int32, byte, …) are Kubernetes' own; the API server checks few of them.
    const ajv = new Ajv({ allErrors: true, strict: false, validateFormats: false });
    ajv.addKeyword({
      keyword: 'featureFlag',
      errors: true,
      validate: function featureFlag(flag: string) {
        (featureFlag as any).errors = [{ keyword: 'featureFlag', message: `needs the feature flag ${flag} in config-features (off by default)`, params: { flag } }];
        return false;
      },
    });
    for (const crd of crds) {
      const closePreserved = crd.group.startsWith('eventing.');
      for (const v of crd.versions) {
        this.validators.set(`${crd.group}/${v.name}/${crd.kind}`, ajv.compile(strictSchema(v.schema, closePreserved, enabledFlags)));
      }
    }
  }

  kinds(): string[] {
    return [...this.validators.keys()];
  }

  /** Problems as "file: path: message"; undefined when no CRD covers the kind. */
  check({ file, obj }: { file: string; obj: Record<string, any> }): string[] | undefined {
    const validate = this.validators.get(`${obj.apiVersion}/${obj.kind}`);
    if (!validate) return undefined;
    if (validate(obj)) return [];
    return (validate.errors ?? []).map((e) => `${file}: ${describe(e)}`);
  }
}

function describe(e: ErrorObject): string {
  // A JSON pointer (/spec/x~1y/0) as kubectl writes a path (spec.x/y[0]).
  const at = e.instancePath.split('/').slice(1)
    .map((seg) => seg.replaceAll('~1', '/').replaceAll('~0', '~'))
    .reduce((p, seg) => (/^\d+$/.test(seg) ? `${p}[${seg}]` : p ? `${p}.${seg}` : seg), '') || '(root)';
  if (e.keyword === 'additionalProperties') return `unknown field "${at === '(root)' ? '' : `${at}.`}${e.params.additionalProperty}"`;
  return `${at}: ${e.message}${e.keyword === 'enum' ? ` (${e.params.allowedValues.join(', ')})` : ''}`;
}
