// The second line of defence: every sharp call (header read and decode) runs in a decoder
// process (decoder-process.ts), one task at a time, where it can be stopped whatever the
// codec is doing. libvips cannot be interrupted inside one codec call, and memory a codec
// holds in the server would stay there; a killed process returns both at once.
//
// A task's process is killed, and the task answered, when:
//   - it runs past its deadline (the decode budget plus 250 ms, so that libvips' own stop,
//     which answers the same, comes first where it can; a header read and decode in one task
//     get one each, the decode's from when the process says it starts): decode-timeout;
//   - its RSS rises past its memory allowance, a multiple of its estimated bytes:
//     image-too-large (the header estimate was wrong, which this line does not depend on);
//   - its client has gone and it is still running ABORT_GRACE_MS later (a short task is
//     cheaper to finish than a process is to start again).
// A process that dies on its own (a codec crash) answers unprocessable-image. Every lost
// process is replaced: at once after a kill, after a doubling backoff while replacements
// keep dying before they are ready. Queued tasks wait for a process while one is starting
// or running; with none (all are backing off), they are answered 503 at once.
import { fork, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../../server-kit/log.ts';
import { memoryAllowance, type ImageHeader } from './decode-budget.ts';
import type { DecodeJob, DecodeSteps, Decoded, HeaderJob, PixelJob, Running } from './decode-image.ts';
import type { FromDecoder, SentError, ToDecoder } from './decoder-process.ts';
import { ClientClosed, ClientError, DecodeTimeout, ImageTooLarge, UnprocessableImage, WorkerUnavailable } from './errors.ts';

export type DecoderLoss = 'timed-out' | 'over-memory' | 'crashed' | 'client-gone';

export interface DecoderPoolOptions {
  processes: number;
  /** The process's entry point; tests pass one that misbehaves on purpose. */
  entry?: string;
  /** Delay before replacing a process that died before it was ready: doubles per failure in a row (ms). */
  respawnDelayMs?: { initial: number; max: number };
  /** A process lost is a warning, with its reason in the fields. */
  log?: Pick<Logger, 'warn'>;
  /** Observes each process lost, by reason (metrics); may also be set later. */
  onLoss?: (reason: DecoderLoss) => void;
}

/** How long a task whose client has gone may still run before its process is killed (ms): about what starting a process costs. */
export const ABORT_GRACE_MS = 250;
/** What libvips gets past the decode budget to stop by itself (ms). */
const DEADLINE_GRACE_MS = 250;
/** A process not ready by then is killed, and counts as a failed start (ms). */
const START_TIMEOUT_MS = 30_000;
const MiB = 1024 * 1024;

const here = fileURLToPath(import.meta.url);
let sourceBundle: Promise<string> | undefined;

/**
 * The process's entry point: in the esbuild bundle, decoder-process.js beside main.js; from
 * the .ts sources, the same bundled on first use (decoder-source.ts).
 */
function entryPoint(): Promise<string> {
  if (!here.endsWith('.ts')) return Promise.resolve(path.join(path.dirname(here), 'decoder-process.js'));
  return (sourceBundle ??= import('./decoder-source.ts').then((m) => m.bundleDecoderProcess()));
}

interface Task {
  msg: ToDecoder;
  /** The image, sent with the task unless its process already holds it. */
  bytes: Uint8Array;
  signal?: AbortSignal;
  /** Settles the answer; later calls do nothing. */
  answer: (outcome: { value: unknown } | { error: Error }) => void;
  /** Marks the work as ended (its memory is back). */
  finish: () => void;
  /** The deadline, from dispatch. */
  deadline?: NodeJS.Timeout;
  /** The grace a task whose client has gone gets to end by itself. */
  grace?: NodeJS.Timeout;
  onAbort?: () => void;
}

interface Proc {
  child: ChildProcess;
  state: 'starting' | 'ready' | 'stopping';
  task?: Task;
  /** The image the process holds: the last one sent to it (weakly: the request owns it). */
  holds?: WeakRef<Uint8Array>;
  /** Why the pool killed it, when it did. */
  killedFor?: DecoderLoss;
  exited: Promise<void>;
}

export class DecoderPool implements DecodeSteps {
  private procs: Proc[] = [];
  private queue: Task[] = [];
  private nextId = 1;
  private failures = 0;
  private closed = false;
  private respawns = new Set<NodeJS.Timeout>();
  private idle: (() => void)[] = [];
  /** Observes each process lost, by reason: the pool starts before the metrics exist. */
  onLoss?: (reason: DecoderLoss) => void;
  private readonly backoff: { initial: number; max: number };
  private readonly log: Pick<Logger, 'warn'>;

  private constructor(
    private opts: DecoderPoolOptions,
    private entry: string,
  ) {
    this.backoff = opts.respawnDelayMs ?? { initial: 100, max: 30_000 };
    this.log = opts.log ?? { warn: (msg, fields) => console.error(msg, fields) };
    this.onLoss = opts.onLoss;
  }

  /** Starts the processes; resolves once the first is ready (the others join as they are), rejects if it fails. */
  static async start(opts: DecoderPoolOptions): Promise<DecoderPool> {
    const pool = new DecoderPool(opts, opts.entry ?? (await entryPoint()));
    try {
      await pool.spawn();
    } catch (err) {
      await pool.close();
      throw err;
    }
    for (let i = 1; i < opts.processes; i++) pool.spawn().catch(() => {}); // lost() logs and retries
    return pool;
  }

  /** Processes ready for a task, and all of them (starting, ready or stopping). */
  get processes(): { ready: number; total: number } {
    return { ready: this.procs.filter((p) => p.state === 'ready').length, total: this.procs.length };
  }

  /** Resolves once every process is ready (benchmarks and tests). */
  async allReady(): Promise<void> {
    while (!this.closed && this.processes.ready < this.opts.processes) await new Promise<void>((r) => this.idle.push(r));
  }

  header(bytes: Uint8Array, job: HeaderJob, signal?: AbortSignal): Running<ImageHeader> {
    return this.run(bytes, { id: this.nextId++, op: 'header', job, memoryBytes: memoryAllowance(job.estimatedBytes, bytes.length) }, signal);
  }

  pixels(bytes: Uint8Array, job: PixelJob, signal?: AbortSignal): Running<Uint8Array> {
    return this.run(bytes, { id: this.nextId++, op: 'pixels', job, memoryBytes: memoryAllowance(job.estimatedBytes, bytes.length) }, signal);
  }

  decode(bytes: Uint8Array, job: DecodeJob, signal?: AbortSignal): Running<Decoded> {
    return this.run(bytes, { id: this.nextId++, op: 'decode', job, memoryBytes: memoryAllowance(job.estimatedBytes, bytes.length) }, signal);
  }

  /** Stops taking tasks, lets running ones end (each within its deadline), then stops the processes. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.respawns) clearTimeout(t);
    this.respawns.clear();
    for (const task of this.queue.splice(0)) this.end(task, { error: new WorkerUnavailable('The decoders are shutting down.') });
    while (this.procs.some((p) => p.task)) await new Promise<void>((r) => this.idle.push(r));
    await Promise.all(this.procs.map((p) => this.stop(p)));
    this.wake();
  }

  private run<T>(bytes: Uint8Array, msg: ToDecoder, signal?: AbortSignal): Running<T> {
    let answer!: Task['answer'];
    let finish!: () => void;
    const result = new Promise<T>((resolve, reject) => {
      let answered = false;
      answer = (outcome) => {
        if (answered) return;
        answered = true;
        if ('error' in outcome) reject(outcome.error);
        else resolve(outcome.value as T);
      };
    });
    const done = new Promise<void>((resolve) => (finish = resolve));
    const task: Task = { msg, bytes, signal, answer, finish };
    if (this.closed) this.end(task, { error: new WorkerUnavailable('The decoders are shutting down.') });
    else if (signal?.aborted) this.end(task, { error: new ClientClosed() });
    else if (!this.procs.length) this.end(task, { error: noneRunning() });
    else {
      task.onAbort = () => this.abandon(task);
      signal?.addEventListener('abort', task.onAbort, { once: true });
      this.queue.push(task);
      this.dispatch();
    }
    return { result, done };
  }

  /** Hands queued tasks, oldest first, to idle processes: the one that holds the task's image if it is idle. */
  private dispatch(): void {
    while (this.queue.length) {
      const idle = this.procs.filter((p) => p.state === 'ready' && !p.task);
      if (!idle.length) return;
      const task = this.queue.shift()!;
      const holder = idle.find((p) => p.holds?.deref() === task.bytes);
      const proc = holder ?? idle[0];
      proc.task = task;
      // A decode is the image's last step; a header read, or one that may end without decoding, is not.
      proc.holds = task.msg.op === 'pixels' ? undefined : new WeakRef(task.bytes);
      task.deadline = setTimeout(() => this.kill(proc, 'timed-out'), deadlineMs(task));
      proc.child.send(holder ? task.msg : { ...task.msg, bytes: task.bytes }, (err) => {
        if (err && proc.task === task) this.kill(proc, 'crashed');
      });
    }
  }

  /** The client has gone: a queued task is dropped; a running one is killed unless it ends within the grace. */
  private abandon(task: Task): void {
    task.answer({ error: new ClientClosed() });
    const i = this.queue.indexOf(task);
    if (i >= 0) {
      this.queue.splice(i, 1);
      this.end(task);
      return;
    }
    const proc = this.procs.find((p) => p.task === task);
    if (proc) task.grace = setTimeout(() => proc.task === task && this.kill(proc, 'client-gone'), ABORT_GRACE_MS);
  }

  /** Answers (if not yet) and ends a task. */
  private end(task: Task, outcome?: { value: unknown } | { error: Error }): void {
    clearTimeout(task.deadline);
    clearTimeout(task.grace);
    if (task.onAbort) task.signal?.removeEventListener('abort', task.onAbort);
    if (outcome) task.answer(outcome);
    task.finish();
  }

  private spawn(): Promise<void> {
    const child = fork(this.entry, [], {
      // A decoder's JavaScript holds only the task's input and answer; the pixels are native.
      // --expose-gc: see decoder-process.ts.
      execArgv: ['--max-old-space-size=64', '--expose-gc'],
      serialization: 'advanced',
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const proc: Proc = { child, state: 'starting', exited: new Promise((resolve) => child.once('exit', () => resolve())) };
    this.procs.push(proc);
    // One that hangs while starting would hold the tasks waiting for it.
    const starting = setTimeout(() => proc.state === 'starting' && child.kill('SIGKILL'), START_TIMEOUT_MS);
    proc.exited.then(() => clearTimeout(starting));
    return new Promise((resolve, reject) => {
      child.on('message', (msg: FromDecoder) => {
        if (msg.type === 'ready') {
          if (proc.state !== 'starting') return;
          clearTimeout(starting);
          proc.state = 'ready';
          this.failures = 0;
          resolve();
          this.dispatch();
          this.wake();
        } else if (proc.task?.msg.id === msg.id && !proc.killedFor) {
          if (msg.type === 'decoding') this.decoding(proc.task, proc, msg.memoryBytes);
          else if (msg.type === 'over-memory') this.kill(proc, 'over-memory');
          else this.complete(proc, msg.type === 'done' ? { value: msg.value } : { error: fromSent(msg.error) });
        }
      });
      child.on('error', (err) => {
        this.log.warn(`decoder process error: ${err.message}`);
        if (child.pid !== undefined) return; // it runs: 'exit' follows
        reject(err);
        this.lost(proc, err.message);
      });
      child.once('exit', (code, signal) => {
        reject(new Error(`decoder process exited (${signal ?? `code ${code}`}) before it was ready`));
        this.lost(proc, signal ?? `code ${code}`);
      });
    });
  }

  /** A one-step task's header passed: its decode gets a deadline of its own, and its allowance. */
  private decoding(task: Task, proc: Proc, memoryBytes: number): void {
    task.msg.memoryBytes = memoryBytes;
    clearTimeout(task.deadline);
    task.deadline = setTimeout(() => this.kill(proc, 'timed-out'), deadlineMs(task));
  }

  private complete(proc: Proc, outcome: { value: unknown } | { error: Error }): void {
    const task = proc.task!;
    proc.task = undefined;
    if (task.msg.op === 'decode' && 'value' in outcome && (outcome.value as Decoded).rgb) proc.holds = undefined; // decoded: it let the image go
    this.end(task, outcome);
    this.dispatch();
    this.wake();
  }

  /** Kills a process for a reason and answers its task; lost() replaces it once it has exited. */
  private kill(proc: Proc, reason: DecoderLoss): void {
    if (proc.killedFor || !this.procs.includes(proc)) return;
    proc.killedFor = reason;
    const task = proc.task;
    if (task) task.answer({ error: lossError(reason, task.msg) });
    proc.child.kill('SIGKILL');
    this.onLoss?.(reason);
  }

  private lost(proc: Proc, how: string): void {
    const i = this.procs.indexOf(proc);
    if (i < 0) return;
    this.procs.splice(i, 1);
    const reason: DecoderLoss = proc.killedFor ?? 'crashed';
    const task = proc.task;
    proc.task = undefined;
    if (task) this.end(task, { error: lossError(reason, task.msg) }); // its memory is back now
    const deliberate = proc.killedFor !== undefined;
    if (!deliberate && proc.state !== 'stopping') this.onLoss?.('crashed');
    if (!this.closed && proc.state !== 'stopping') {
      if (!deliberate) this.failures++;
      const delay = this.failures ? Math.min(this.backoff.max, this.backoff.initial * 2 ** (this.failures - 1)) : 0;
      this.log.warn(`decoder process ${deliberate ? `killed (${reason})` : `exited (${how})`}; starting a replacement${delay ? ` in ${delay} ms (attempt ${this.failures})` : ''}`, {
        loss: reason,
        attempt: this.failures,
        delayMs: delay,
      });
      // Tasks queued meanwhile wait for the replacement, unless there is none to wait for.
      if (!delay) this.spawn().catch(() => {}); // a failed start is lost() again, with a delay
      else {
        const timer = setTimeout(() => {
          this.respawns.delete(timer);
          this.spawn().catch(() => {});
        }, delay);
        this.respawns.add(timer);
      }
    }
    if (!this.procs.length) for (const waiting of this.queue.splice(0)) this.end(waiting, { error: noneRunning() });
    this.dispatch();
    this.wake();
  }

  private async stop(proc: Proc): Promise<void> {
    proc.state = 'stopping';
    proc.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const slow = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), 2000)));
    if (await Promise.race([proc.exited.then(() => false), slow])) proc.child.kill('SIGKILL');
    clearTimeout(timer);
    await proc.exited;
  }

  private wake(): void {
    for (const resolve of this.idle.splice(0)) resolve();
  }
}

const deadlineMs = (task: Task) => task.msg.job.timeoutSeconds * 1000 + DEADLINE_GRACE_MS;

const noneRunning = () => new WorkerUnavailable('No decoder process is running; one is being restarted. Retry shortly.');

function lossError(reason: DecoderLoss, msg: ToDecoder): Error {
  const { format, timeoutSeconds } = msg.job;
  switch (reason) {
    case 'timed-out':
      return new DecodeTimeout(timeoutSeconds);
    case 'over-memory': {
      const mib = Math.round(msg.memoryBytes / MiB);
      return new ImageTooLarge('Image too costly to decode', `Decoding this ${format.toUpperCase()} image took more than ${mib} MiB of memory, its allowance; it was stopped.`, { limitBytes: msg.memoryBytes });
    }
    case 'client-gone':
      return new ClientClosed();
    default:
      return new UnprocessableImage(`The ${format.toUpperCase()} decoder stopped while reading this image; it cannot be decoded.`);
  }
}

function fromSent(error: SentError): Error {
  if (error.code) return new ClientError(error.code, error.title ?? '', error.message, error.details);
  return new Error(error.message);
}
