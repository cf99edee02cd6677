// `npm run build` (and the container image's build stage): every bundle in dist/, with the
// configuration `npm start` uses too (scripts/bundles.ts). Dependencies with native code
// stay external: sharp's addon and onnxruntime-node.
import path from 'node:path';
import { BUNDLES } from './bundles.ts';

const root = path.resolve(import.meta.dirname, '..');
for (const bundle of BUNDLES) await bundle.build(root, 'info');
