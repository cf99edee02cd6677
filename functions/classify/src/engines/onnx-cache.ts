// ONNX Runtime's own optimisation of a model file, saved once beside it. Creating a session
// from the portable file runs the optimisation pass at every load (~200 ms); from the saved
// graph it is skipped. The saved graph may hold CPU-specific layouts and runtime-version
// details, so its name carries a fingerprint of both, and on a mismatch the engine simply
// finds no file and loads the portable one.
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import { rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

/** The CPU's feature flags from /proc/cpuinfo, or undefined where that cannot be read. */
export function cpuFlags(): string | undefined {
  try {
    return /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? '';
  } catch {
    return undefined; // not Linux
  }
}

let fingerprint: string | undefined;

function runtimeFingerprint(): string {
  if (fingerprint) return fingerprint;
  const ortVersion = createRequire(import.meta.url)('onnxruntime-node/package.json').version;
  // Without /proc/cpuinfo the CPU model name has to do.
  const parts = [os.arch(), ortVersion, os.cpus()[0]?.model, cpuFlags() ?? ''];
  return (fingerprint = createHash('sha256').update(parts.join('|')).digest('hex').slice(0, 10));
}

/** Where the optimised graph of `onnxPath` is saved for this CPU and runtime version. */
export function optimizedPathFor(onnxPath: string): string {
  return `${onnxPath.replace(/\.onnx$/, '')}.ort-${runtimeFingerprint()}.onnx`;
}

/**
 * Saves the session-optimised graph of `onnxPath` once, unless it is there already or the
 * folder is read-only (the container image, which bakes it in at build time). Failure only
 * costs start-up time later: sessions then optimise at load. Returns where it belongs, so
 * workers need not work the fingerprint out again.
 */
export async function saveOptimized(onnxPath: string, log: (msg: string) => void = () => {}): Promise<string> {
  const target = optimizedPathFor(onnxPath);
  if (existsSync(target)) return target;
  try {
    accessSync(path.dirname(target), constants.W_OK);
  } catch {
    return target;
  }
  try {
    const ort = await import('onnxruntime-node');
    const tmp = `${target}.part`;
    // Severity 3 (errors only) hides ORT's warning that the file is CPU-specific: we know.
    const session = await ort.InferenceSession.create(onnxPath, { graphOptimizationLevel: 'all', optimizedModelFilePath: tmp, logSeverityLevel: 3 });
    await session.release();
    await rename(tmp, target);
    log(`saved the CPU-optimised model: ${target}`);
  } catch (err) {
    log(`could not save a CPU-optimised model (${(err as Error).message}); sessions will optimise at load`);
  }
  return target;
}
