// `npm run model`: fetch (or copy from the mirror, KLASSIFY_MIRROR), verify and convert every
// served model (KLASSIFY_MODELS, default all) into KLASSIFY_MODEL_CACHE, and save ONNX
// Runtime's optimised graph of each for this CPU, as the server would on first start. The
// container build runs this so the image never downloads at start-up.
import { loadConfig } from '../functions/classify/src/config.ts';
import { saveOptimized } from '../functions/classify/src/engines/onnx-cache.ts';
import { AssetError } from '../functions/classify/src/errors.ts';
import { prepareModel } from '../functions/classify/src/model/prepare.ts';

try {
  const config = loadConfig();
  for (const model of config.models) {
    const files = await prepareModel(model, config, { needSource: process.argv.includes('--with-source'), log: console.log });
    await saveOptimized(files.onnxPath, console.log);
    console.log(`model ready: ${files.onnxPath}`);
  }
} catch (err) {
  console.error(err instanceof AssetError ? `klassify: ${err.message}` : err);
  process.exit(1);
}
