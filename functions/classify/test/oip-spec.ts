// The Open Inference Protocol's REST specification, as the tests read it: from a mirror
// folder (KLASSIFY_OIP_MIRROR, or the oip/ folder of KLASSIFY_MIRROR), else from the pinned
// commit of kserve/open-inference-protocol, each file checked against its SHA-256 first.
// The tests check our routes against these files, not against our own code.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv, type ValidateFunction } from 'ajv';
import { parse } from 'yaml';
import { fetchAssets, type AssetSet } from '../src/model/assets.ts';
import { mirrorDir, OIP_MIRROR } from '../src/model/mirror.ts';
import { ROOT } from '../../../test/support.ts';

const COMMIT = 'd49cc23f89d709d87b210ef9449e273ae243984e';

export const OIP_SPEC: AssetSet = {
  what: 'Open Inference Protocol specification',
  baseUrl: `https://raw.githubusercontent.com/kserve/open-inference-protocol/${COMMIT}/specification/protocol/`,
  sha256: {
    'open_inference_rest.yaml': '719644d1cec52d1c98268ee16f3b75d6de7f523c6686463cbf06bf79134edbb2',
    'inference_rest.md': '842224871d9084e022dde279973bf2f7c9d5ef732e9b33ad008900bcf7698766',
  },
  mirror: { kind: OIP_MIRROR, holds: 'open_inference_rest.yaml and inference_rest.md' },
};

export const oipMirror = (env = process.env): string | undefined => mirrorDir(OIP_MIRROR, env);

export interface OipSpec {
  /** inference_rest.md, the prose with its examples. */
  markdown: string;
  /** A validator for each of open_inference_rest.yaml's component schemas, by name. */
  schema(name: string): ValidateFunction;
  /** The JSON of each indented or fenced example block of the markdown that parses. */
  examples: unknown[];
}

export async function loadOipSpec(): Promise<OipSpec> {
  const dir = await fetchAssets(OIP_SPEC, { dest: path.join(ROOT, '.cache/oip'), mirror: oipMirror() });
  const doc = parse(readFileSync(path.join(dir, 'open_inference_rest.yaml'), 'utf8'));
  const markdown = readFileSync(path.join(dir, 'inference_rest.md'), 'utf8');
  // OpenAPI 3.0 schemas are JSON Schema with extra keywords (x-examples), which strict mode refuses.
  const ajv = new Ajv({ strict: false, allErrors: true });
  ajv.addSchema({ $id: 'oip', components: doc.components });
  const schema = (name: string) => {
    const validate = ajv.getSchema(`oip#/components/schemas/${name}`);
    if (!validate) throw new Error(`open_inference_rest.yaml has no schema ${name}`);
    return validate;
  };
  return { markdown, schema, examples: jsonBlocks(markdown) };
}

/** Every JSON object in the markdown's examples: a `{` alone on its line, to its matching `}`. */
export function jsonBlocks(markdown: string): unknown[] {
  const found: unknown[] = [];
  for (const open of markdown.matchAll(/^[ \t]*\{[ \t]*$/gm)) {
    const start = open.index + open[0].indexOf('{');
    let depth = 0;
    for (let i = start; i < markdown.length; i++) {
      if (markdown[i] === '{') depth++;
      else if (markdown[i] === '}' && --depth === 0) {
        try {
          found.push(JSON.parse(markdown.slice(start, i + 1)));
        } catch {
          // a schema in the prose's notation ($string, #optional), or an example that is not JSON
        }
        break;
      }
    }
  }
  return found;
}
