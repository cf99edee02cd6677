import type { Metafile } from 'esbuild';

/** The source files an esbuild metafile lists, relative to esbuild's absWorkingDir. */
export function metafileInputs(metafile: Metafile): string[];
/** True when `outputs` exist and every input recorded for `name` is as it was at the build. */
export function isFresh(root: string, name: string, outputs: string[]): boolean;
/** Records the files (relative to `root`, or absolute) that the build of `name` read. */
export function recordInputs(root: string, name: string, inputs: string[]): void;
