/**
 * The klassify page: one Alpine component, `klassify`, bound in index.html.
 *
 * Uses Alpine's CSP build, so the page runs under a Content-Security-Policy
 * without 'unsafe-eval': templates may only read properties and call the
 * methods defined here (no arrow functions or template strings in markup).
 * All decisions live in ./lib (unit-tested); this file wires them to the DOM.
 */

import Alpine from '@alpinejs/csp';
import './styles.css';
import { CONFIG_PATH } from '../../contracts/page.ts';
import { classifyImage, type ClassifyResult, type Progress, type Transport } from './lib/classify.ts';
import { chooseModel, classifyEndpoint, DEFAULT_CONFIG, modelTitle, normalizeConfig, type PageConfig } from './lib/config.ts';
import { rankPredictions } from './lib/confidence.ts';
import { parseRelayedEvent, toFeedItem, type FeedItem } from './lib/feed.ts';
import { barWidth, formatBytes, formatMs, formatPercent, plural, splitLabel } from './lib/format.ts';
import { SNIFF_BYTES, SUPPORTED_FORMATS_TEXT, sniffImageFormat } from './lib/image-format.ts';
import { notAnImageMessage, tooLargeMessage, type ErrorMessage } from './lib/problem.ts';
import { createQueue, type UploadQueue } from './lib/queue.ts';
import { shrinkIfRefused } from './lib/shrink.ts';

type Status = 'preparing' | 'queued' | 'uploading' | 'classifying' | 'waking' | 'retrying' | 'done' | 'error';

interface Card {
  id: number;
  name: string;
  /** The file as picked. */
  originalBytes: number;
  /** What is sent: the shrunk JPEG, or the original; 0 until known. */
  uploadBytes: number;
  /** Why the page shrank it ("11 MB is over the 10 MB upload limit"); '' when sent as it is. */
  shrunkBecause: string;
  previewUrl: string;
  previewFailed: boolean;
  status: Status;
  uploaded: number;
  attempt: number;
  retryInMs: number;
  /** When the next attempt starts (Date.now() clock), for a countdown that ticks. */
  retryAt: number;
  retryReason: string;
  copied: boolean;
  result: ClassifyResult | null;
  roundTripMs: number;
  error: ErrorMessage | null;
}

type FunctionState = 'unknown' | 'waking' | 'ready' | 'unreachable';
type FeedState = 'off' | 'nosource' | 'connecting' | 'live' | 'reconnecting';

const FEED_LIMIT = 50;
const UPLOAD_TIMEOUT_MS = 120_000;
/** After "unreachable", the pill asks again: 2 s, 4 s, … up to 30 s. */
const RECHECK_FIRST_MS = 2000;
const RECHECK_MAX_MS = 30_000;
/** Where the page remembers the model a person chose. */
const MODEL_KEY = 'klassify.model';

/** POSTs the raw image bytes with XMLHttpRequest, which (unlike fetch) reports upload progress. */
const xhrTransport: Transport = ({ url, file, onUploadProgress, onUploaded }) =>
  new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    let uploaded = false;
    const markUploaded = () => {
      if (!uploaded) {
        uploaded = true;
        onUploaded();
      }
    };
    xhr.open('POST', url);
    xhr.timeout = UPLOAD_TIMEOUT_MS;
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.setRequestHeader('Accept', 'application/json, application/problem+json');
    if (typeof crypto.randomUUID === 'function') xhr.setRequestHeader('X-Request-Id', crypto.randomUUID());
    xhr.upload.addEventListener('progress', (event) => {
      if (event.lengthComputable && event.total > 0) onUploadProgress(event.loaded / event.total);
    });
    xhr.upload.addEventListener('load', markUploaded);
    xhr.addEventListener('readystatechange', () => {
      if (xhr.readyState >= XMLHttpRequest.HEADERS_RECEIVED) markUploaded();
    });
    xhr.addEventListener('load', () =>
      resolve({ status: xhr.status, header: (name) => xhr.getResponseHeader(name), body: xhr.responseText }),
    );
    xhr.addEventListener('error', () => reject(new Error('network error')));
    xhr.addEventListener('timeout', () => reject(new Error('timeout')));
    xhr.addEventListener('abort', () => reject(new Error('aborted')));
    xhr.send(file);
  });

function klassify() {
  // Kept outside Alpine's reactive state: File objects and bookkeeping.
  const files = new Map<number, File>();
  let queue: UploadQueue = createQueue({ concurrency: DEFAULT_CONFIG.uploadConcurrency });
  let nextId = 1;
  let dragDepth = 0;
  let source: EventSource | null = null;
  let recheckTimer: ReturnType<typeof setTimeout> | undefined;
  let recheckDelay = RECHECK_FIRST_MS;
  let ticker: ReturnType<typeof setInterval> | undefined;
  let preparing: Promise<void> = Promise.resolve();

  return {
    config: DEFAULT_CONFIG as PageConfig,
    items: [] as Card[],
    feed: [] as FeedItem[],
    feedState: 'off' as FeedState,
    functionState: 'unknown' as FunctionState,
    /** The model the page asks for: the person's choice, else the served default. */
    model: '',
    dragging: false,
    announcement: '',
    /** Date.now(), refreshed while a countdown shows. */
    now: Date.now(),
    formatsText: SUPPORTED_FORMATS_TEXT,

    async init() {
      this.config = await loadConfig();
      this.model = chooseModel(this.config, storage('get'));
      queue = createQueue({ concurrency: this.config.uploadConcurrency });
      document.addEventListener('dragenter', (event) => this.onDragEnter(event));
      document.addEventListener('dragover', (event) => this.onDragOver(event));
      document.addEventListener('dragleave', () => this.onDragLeave());
      document.addEventListener('drop', (event) => this.onDrop(event));
      document.addEventListener('paste', (event) => this.onPaste(event));
      if (this.config.features.prewarm && this.config.readinessUrl) this.checkFunction();
      if (this.config.features.events) {
        // Without a source nothing can arrive: say so, rather than a green "Live" over silence.
        if (this.config.eventSource) this.connectFeed();
        else this.feedState = 'nosource';
      }
    },

    // ---- adding images -------------------------------------------------

    openPicker() {
      (this as unknown as { $refs: Record<string, HTMLInputElement> }).$refs.picker.click();
    },

    openCamera() {
      (this as unknown as { $refs: Record<string, HTMLInputElement> }).$refs.camera.click();
    },

    onPicked(event: Event) {
      const input = event.target as HTMLInputElement;
      this.addFiles(Array.from(input.files ?? []));
      input.value = '';
    },

    onDragEnter(event: DragEvent) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth += 1;
      this.dragging = true;
    },

    onDragOver(event: DragEvent) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      if (event.dataTransfer) event.dataTransfer.dropEffect = 'copy';
    },

    onDragLeave() {
      dragDepth = Math.max(0, dragDepth - 1);
      if (dragDepth === 0) this.dragging = false;
    },

    onDrop(event: DragEvent) {
      if (!hasFiles(event)) return;
      event.preventDefault();
      dragDepth = 0;
      this.dragging = false;
      this.addFiles(Array.from(event.dataTransfer?.files ?? []));
    },

    onPaste(event: ClipboardEvent) {
      const pasted = Array.from(event.clipboardData?.items ?? [])
        .filter((item) => item.kind === 'file')
        .map((item) => item.getAsFile())
        .filter((file): file is File => file !== null);
      if (pasted.length === 0) return;
      event.preventDefault();
      this.addFiles(pasted.map((file, index) => renamePasted(file, index)));
    },

    addFiles(list: File[]) {
      if (list.length === 0) return;
      const cards: Card[] = list.map((file) => ({
        id: nextId++,
        name: file.name || 'image',
        originalBytes: file.size,
        uploadBytes: 0,
        shrunkBecause: '',
        previewUrl: '',
        previewFailed: false,
        status: 'preparing',
        uploaded: 0,
        attempt: 1,
        retryInMs: 0,
        retryAt: 0,
        retryReason: '',
        copied: false,
        result: null,
        roundTripMs: 0,
        error: null,
      }));
      // Newest batch first, in the order the user picked the files.
      this.items = [...cards, ...this.items];
      this.announce(`${plural(list.length, 'image')} added`);
      // One at a time: a decoded 12-megapixel photo takes ~50 MB, and phones have little to spare.
      cards.forEach((card, index) => {
        preparing = preparing.then(() => this.prepare(card.id, list[index])).catch(() => {});
      });
    },

    /**
     * Checks the file's first bytes (no request for a non-image), shrinks a photo the
     * function would refuse as it is, then queues the upload. The thumbnail shows what is sent.
     */
    async prepare(id: number, file: File) {
      let head: Uint8Array;
      try {
        head = new Uint8Array(await file.slice(0, SNIFF_BYTES).arrayBuffer());
      } catch {
        const gone = this.card(id);
        if (gone) {
          gone.status = 'error';
          gone.error = { title: "Couldn't read this file", detail: 'The browser could not open it; it may have been moved or deleted.', hint: '', status: 0, retryable: false };
        }
        return;
      }
      const format = sniffImageFormat(head);
      let card = this.card(id);
      if (!card) return;
      if (!format) {
        card.status = 'error';
        card.previewFailed = true;
        card.error = notAnImageMessage(card.name);
        this.announce(card.error.detail);
        return;
      }
      const shrunk = await shrinkIfRefused(file, format, this.config);
      card = this.card(id);
      if (!card) return;
      const mediaType = `image/${format}`;
      const upload = shrunk
        ? new File([shrunk.blob], card.name.replace(/\.[^.]*$/, '') + '.jpg', { type: 'image/jpeg' })
        : file.type === mediaType ? file : new File([file], card.name, { type: mediaType });
      files.set(id, upload);
      card.uploadBytes = upload.size;
      card.shrunkBecause = shrunk?.reason ?? '';
      card.previewUrl = URL.createObjectURL(upload);
      this.enqueue(id);
    },

    enqueue(id: number) {
      const card = this.card(id);
      const file = files.get(id);
      if (!card || !file) return;
      card.status = 'queued';
      card.error = null;
      card.result = null;
      if (file.size > this.config.maxUploadBytes) {
        card.status = 'error';
        card.error = tooLargeMessage(formatBytes(file.size), formatBytes(this.config.maxUploadBytes));
        return;
      }
      queue.push(() => this.upload(id, file));
    },

    async upload(id: number, file: File) {
      if (!this.card(id)) return; // removed while queued
      const outcome = await classifyImage(file, {
        url: classifyEndpoint(this.config, location.origin, this.model),
        transport: xhrTransport,
        slowAfterMs: this.config.slowAfterMs,
        maxAttempts: this.config.maxAttempts,
        isOnline: () => navigator.onLine,
        onProgress: (progress: Progress) => this.onProgress(id, progress),
      });
      const card = this.card(id);
      if (!card) return;
      if (outcome.ok) {
        card.status = 'done';
        card.result = outcome.result;
        card.roundTripMs = outcome.roundTripMs;
        this.functionState = 'ready';
        const top = outcome.result.predictions[0];
        this.announce(top ? `${card.name}: ${splitLabel(top.label).primary}, ${formatPercent(top.probability)}` : `${card.name}: no predictions`);
      } else {
        card.status = 'error';
        card.error = outcome.error;
        if (outcome.error.status === 502) {
          this.functionState = 'unreachable';
          this.scheduleRecheck();
        }
        this.announce(`${card.name}: ${outcome.error.title}`);
      }
    },

    onProgress(id: number, progress: Progress) {
      const card = this.card(id);
      if (!card) return;
      card.status = progress.phase;
      card.attempt = progress.attempt;
      if (progress.uploaded !== undefined) card.uploaded = progress.uploaded;
      if (progress.retryInMs !== undefined) {
        card.retryInMs = progress.retryInMs;
        card.retryAt = Date.now() + progress.retryInMs;
        this.startTicker();
      }
      if (progress.reason) card.retryReason = progress.reason.title;
      if (progress.phase === 'waking') this.functionState = 'waking';
    },

    retry(card: Card) {
      this.enqueue(card.id);
    },

    remove(card: Card) {
      const index = this.items.findIndex((item) => item.id === card.id);
      if (card.previewUrl) URL.revokeObjectURL(card.previewUrl);
      files.delete(card.id);
      this.items = this.items.filter((item) => item.id !== card.id);
      this.announce(`${card.name} removed`);
      // Keep the keyboard user's place: the next card, else the previous, else the drop zone.
      const next = this.items[index] ?? this.items[index - 1];
      (this as unknown as { $nextTick(fn: () => void): void }).$nextTick(() => {
        const target = next ? document.querySelector<HTMLElement>(`li.card[data-id="${next.id}"]`) : null;
        (target ?? document.getElementById('dropzone'))?.focus();
      });
    },

    async copyResult(card: Card) {
      if (!card.result) return;
      const json = JSON.stringify({ file: card.name, ...card.result, roundTripMs: Math.round(card.roundTripMs) }, null, 2);
      try {
        await navigator.clipboard.writeText(json);
        card.copied = true;
        this.announce(`${card.name}: result copied as JSON`);
        setTimeout(() => (card.copied = false), 2000);
      } catch {
        this.announce('Copying needs clipboard permission; select the result instead.');
      }
    },

    clearAll() {
      queue.clear();
      for (const card of this.items) if (card.previewUrl) URL.revokeObjectURL(card.previewUrl);
      files.clear();
      this.items = [];
      this.announce('All results cleared');
    },

    card(id: number): Card | undefined {
      return this.items.find((item) => item.id === id);
    },

    announce(text: string) {
      this.announcement = text;
    },

    // ---- the function's health and the event feed ----------------------

    /** Asks the function's readiness; opening the page also starts a scale-from-zero. */
    async checkFunction() {
      if (this.functionState !== 'unreachable') this.functionState = 'waking';
      try {
        const response = await fetch(this.config.readinessUrl, { cache: 'no-store' });
        this.functionState = response.ok ? 'ready' : response.status === 502 ? 'unreachable' : 'waking';
      } catch {
        this.functionState = 'unreachable';
      }
      if (this.functionState === 'ready') recheckDelay = RECHECK_FIRST_MS;
      else this.scheduleRecheck();
    },

    /** While not ready, ask again later, backing off; one timer at most. */
    scheduleRecheck() {
      if (recheckTimer || !this.config.readinessUrl) return;
      const delay = recheckDelay;
      recheckDelay = Math.min(RECHECK_MAX_MS, recheckDelay * 2);
      recheckTimer = setTimeout(() => {
        recheckTimer = undefined;
        void this.checkFunction();
      }, delay);
    },

    /** Refreshes `now` while a countdown shows, so it ticks; stops when none does. */
    startTicker() {
      if (ticker) return;
      this.now = Date.now();
      ticker = setInterval(() => {
        this.now = Date.now();
        if (!this.items.some((item) => item.status === 'retrying')) {
          clearInterval(ticker);
          ticker = undefined;
        }
      }, 250);
    },

    connectFeed() {
      this.feedState = 'connecting';
      source = new EventSource(this.config.eventsUrl);
      source.addEventListener('open', () => {
        this.feedState = this.config.eventSource ? 'live' : 'nosource';
      });
      source.addEventListener('error', () => {
        // EventSource reconnects on its own (with Last-Event-ID) unless closed.
        this.feedState = source?.readyState === EventSource.CLOSED ? 'off' : 'reconnecting';
      });
      source.addEventListener('message', (message: MessageEvent<string>) => {
        const event = parseRelayedEvent(message.data);
        if (!event) return;
        const item = toFeedItem(event);
        if (this.feed.some((existing) => existing.key === item.key)) return;
        this.feed.unshift(item);
        if (this.feed.length > FEED_LIMIT) this.feed.length = FEED_LIMIT;
      });
    },

    // ---- view helpers (called from the template) -------------------------

    get hasItems() {
      return this.items.length > 0;
    },

    get busyCount() {
      return this.items.filter((item) => isBusy(item.status)).length;
    },

    get doneCount() {
      return this.items.filter((item) => item.status === 'done').length;
    },

    get errorCount() {
      return this.items.filter((item) => item.status === 'error').length;
    },

    get summary() {
      const parts = [plural(this.items.length, 'image')];
      if (this.busyCount) parts.push(`${this.busyCount} in progress`);
      if (this.doneCount) parts.push(`${this.doneCount} classified`);
      if (this.errorCount) parts.push(`${this.errorCount} failed`);
      return parts.join(' · ');
    },

    get medianRoundTrip() {
      const times = this.items
        .filter((item) => item.status === 'done')
        .map((item) => item.roundTripMs)
        .sort((a, b) => a - b);
      if (times.length === 0) return '';
      return formatMs(times[Math.floor((times.length - 1) / 2)]);
    },

    /** Pods that answered, from this page's results and from the event feed. */
    get pods() {
      const counts = new Map<string, number>();
      for (const item of this.items) {
        const pod = item.result?.servedBy.pod;
        if (pod) counts.set(pod, (counts.get(pod) ?? 0) + 1);
      }
      for (const entry of this.feed) {
        if (entry.pod && !counts.has(entry.pod)) counts.set(entry.pod, 0);
      }
      return Array.from(counts, ([name, count]) => ({ name, count })).sort((a, b) => b.count - a.count);
    },

    get functionLabel() {
      return {
        unknown: 'Classifier',
        waking: 'Classifier waking up',
        ready: 'Classifier ready',
        unreachable: 'Classifier unreachable',
      }[this.functionState];
    },

    get feedLabel() {
      return { off: 'Off', nosource: 'No event source', connecting: 'Connecting', live: 'Live', reconnecting: 'Reconnecting' }[this.feedState];
    },

    /** The skip link goes to the results, or to the drop zone while there are none. */
    get skipTarget() {
      return this.hasItems ? '#results' : '#dropzone';
    },

    get skipText() {
      return this.hasItems ? 'Skip to results' : 'Skip to the drop zone';
    },

    isBusy(card: Card) {
      return isBusy(card.status);
    },

    statusText(card: Card) {
      switch (card.status) {
        case 'preparing':
          return 'Preparing…';
        case 'queued':
          return 'Queued';
        case 'uploading':
          return card.uploaded > 0 && card.uploaded < 1 ? `Uploading ${Math.round(card.uploaded * 100)}%` : 'Uploading…';
        case 'classifying':
          return 'Classifying…';
        case 'waking':
          return 'Waking up the function…';
        case 'retrying':
          return `${card.retryReason || 'Busy'}: retrying in ${Math.max(1, Math.ceil((card.retryAt - this.now) / 1000))} s (attempt ${card.attempt + 1} of ${this.config.maxAttempts})`;
        case 'done':
          return 'Classified';
        case 'error':
          return 'Failed';
      }
    },

    progressStyle(card: Card) {
      return { width: card.status === 'uploading' ? `${Math.round(card.uploaded * 100)}%` : '100%' };
    },

    /** "3.1 MB" or, when shrunk before upload, "3.1 MB → 52 KB sent". */
    sizeText(card: Card) {
      const original = formatBytes(card.originalBytes);
      return card.uploadBytes > 0 && card.uploadBytes !== card.originalBytes ? `${original} → ${formatBytes(card.uploadBytes)} sent` : original;
    },

    /** Why the photo was changed before upload: the function would have refused it as it was. */
    shrinkText(card: Card) {
      return card.shrunkBecause ? `Shrunk before upload: ${card.shrunkBecause}.` : '';
    },

    mainPredictions(card: Card) {
      return rankPredictions(card.result?.predictions ?? []).main;
    },

    minorPredictions(card: Card) {
      return rankPredictions(card.result?.predictions ?? []).minor;
    },

    minorSummary(card: Card) {
      const count = this.minorPredictions(card).length;
      return `${count} more under 1%`;
    },

    isUnsure(card: Card) {
      return card.result !== null && rankPredictions(card.result.predictions).unsure;
    },

    copyText(card: Card) {
      return card.copied ? 'Copied' : 'Copy JSON';
    },

    label(prediction: { label: string }) {
      return splitLabel(prediction.label).primary;
    },

    synonyms(prediction: { label: string }) {
      return splitLabel(prediction.label).synonyms;
    },

    percent(prediction: { probability: number }) {
      return formatPercent(prediction.probability);
    },

    barStyle(prediction: { probability: number }) {
      return { width: barWidth(prediction.probability) };
    },

    ms(value: number | undefined) {
      return formatMs(value);
    },

    servedText(card: Card) {
      const served = card.result?.servedBy;
      if (!served) return '';
      return [served.revision, served.engine, served.provider].filter(Boolean).join(' · ');
    },

    /** The model that answered this card, by its title. */
    answeredBy(card: Card) {
      return card.result ? modelTitle(this.config, card.result.model) : '';
    },

    // ---- the model picker -------------------------------------------------

    get hasModelChoice() {
      return this.config.models.length > 1;
    },

    get modelText() {
      return modelTitle(this.config, this.model);
    },

    isChosen(option: { name: string }) {
      return option.name === this.model;
    },

    /** A new choice applies to the images added from now on, and is remembered. */
    chooseModel(event: Event) {
      this.model = chooseModel(this.config, (event.target as HTMLSelectElement).value);
      storage('set', this.model);
      this.announce(`New images go to ${this.modelText}`);
    },

    onPreviewError(card: Card) {
      // Before the prepared file is ready there is no src yet; that "error" is not a failure.
      if (card.previewUrl) card.previewFailed = true;
    },
  };
}

function isBusy(status: Status) {
  return status === 'preparing' || status === 'queued' || status === 'uploading' || status === 'classifying' || status === 'waking' || status === 'retrying';
}

function hasFiles(event: DragEvent) {
  return Array.from(event.dataTransfer?.types ?? []).includes('Files');
}

/** Clipboard images are all called "image.png"; number them so cards can be told apart. */
function renamePasted(file: File, index: number): File {
  if (file.name && file.name !== 'image.png') return file;
  const stamp = new Date().toTimeString().slice(0, 8).replace(/:/g, '');
  const ext = file.type.split('/')[1]?.replace(/[^a-z0-9]/gi, '') || 'png';
  return new File([file], `pasted-${stamp}${index ? `-${index + 1}` : ''}.${ext}`, { type: file.type });
}

/** localStorage, which a private window or a strict setting may refuse: then nothing is remembered. */
function storage(op: 'get' | 'set', value = ''): string | null {
  try {
    if (op === 'set') localStorage.setItem(MODEL_KEY, value);
    return localStorage.getItem(MODEL_KEY);
  } catch {
    return null;
  }
}

async function loadConfig(): Promise<PageConfig> {
  try {
    const response = await fetch(CONFIG_PATH, { cache: 'no-store' });
    if (!response.ok) return DEFAULT_CONFIG;
    return normalizeConfig(await response.json());
  } catch {
    return DEFAULT_CONFIG;
  }
}

Alpine.data('klassify', klassify);
Alpine.start();
