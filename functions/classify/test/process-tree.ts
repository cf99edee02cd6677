// Memory and CPU time of a process and every process it started (Linux /proc), for the
// hostile tests and the decoder benchmarks: decodes run in decoder processes, so the
// server's own RSS no longer shows what a decode costs. RSS counts shared pages (the node binary, libvips) once per
// process; PSS splits them among the processes sharing them, so a sum of PSS is what the
// processes together hold, as a pod's memory limit counts it.
import { readFileSync, readdirSync } from 'node:fs';

/** The pid and its descendants, depth first. */
export function processTree(pid: number = process.pid): number[] {
  const out = [pid];
  let tasks: string[] = [];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out; // exited meanwhile
  }
  for (const tid of tasks) {
    let children = '';
    try {
      children = readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8');
    } catch {
      continue;
    }
    for (const child of children.split(' ').filter(Boolean)) out.push(...processTree(Number(child)));
  }
  return out;
}

/** RSS and PSS of the tree in bytes (a process that exits while being read counts 0). */
export function treeMemory(pid: number = process.pid): { rss: number; pss: number; processes: number } {
  let rss = 0;
  let pss = 0;
  const pids = processTree(pid);
  for (const p of pids) {
    try {
      const rollup = readFileSync(`/proc/${p}/smaps_rollup`, 'utf8');
      rss += Number(/^Rss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024;
      pss += Number(/^Pss:\s+(\d+)/m.exec(rollup)?.[1] ?? 0) * 1024;
    } catch {
      // gone
    }
  }
  return { rss, pss, processes: pids.length };
}

/** The tree's RSS in bytes, cheaply (statm: resident pages), for sampling every few ms. */
export function treeRss(pid: number = process.pid): number {
  let pages = 0;
  for (const p of processTree(pid)) {
    try {
      pages += Number(readFileSync(`/proc/${p}/statm`, 'utf8').split(' ')[1]);
    } catch {
      // gone
    }
  }
  return pages * 4096;
}

/**
 * Samples the tree's RSS every `ms` while fn runs; resolves with fn's outcome (an error is
 * returned, not thrown), its wall time and the highest RSS seen above the RSS at the start.
 */
export async function withPeakRss<T>(fn: () => Promise<T>, pid: number = process.pid, ms = 2): Promise<{ ms: number; rise: number; outcome: T | Error }> {
  const before = treeRss(pid);
  let peak = before;
  const timer = setInterval(() => (peak = Math.max(peak, treeRss(pid))), ms);
  const t0 = performance.now();
  try {
    const outcome = await fn().catch((err: Error) => err);
    peak = Math.max(peak, treeRss(pid));
    return { ms: performance.now() - t0, rise: peak - before, outcome };
  } finally {
    clearInterval(timer);
  }
}

/** CPU time (user + system) of the tree's live processes, in ms. */
export function treeCpuMs(pid: number = process.pid): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      // Fields after the command (which may hold spaces): utime and stime are the 12th and 13th.
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // gone
    }
  }
  return ticks * (1000 / CLOCK_TICKS);
}

/** USER_HZ: 100 on every Linux build Node runs on. */
const CLOCK_TICKS = 100;
