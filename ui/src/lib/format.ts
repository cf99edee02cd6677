/**
 * Display formatting for numbers the API returns. Pure functions, no DOM,
 * so they are unit-tested in Node and shared by the page and the event feed.
 */

const DASH = '—';

/** 0.5432 → "54.3%"; tiny non-zero values → "<0.1%"; clamps to [0, 1]. */
export function formatPercent(probability: number): string {
  if (!Number.isFinite(probability)) return DASH;
  const p = Math.min(1, Math.max(0, probability));
  if (p > 0 && p < 0.0005) return '<0.1%';
  const text = (p * 100).toFixed(1);
  return `${text.endsWith('.0') ? text.slice(0, -2) : text}%`;
}

/**
 * Width of a probability bar as a CSS length. Any non-zero probability gets
 * a sliver (0.5%) so that the bar is visible next to its label.
 */
export function barWidth(probability: number): string {
  if (!Number.isFinite(probability) || probability <= 0) return '0%';
  const pct = Math.min(100, Math.max(0.5, probability * 100));
  return `${Number(pct.toFixed(2))}%`;
}

/** 0.42 → "0.42 ms", 7.14 → "7.1 ms", 142.6 → "143 ms", 1534 → "1.53 s", 12345 → "12.3 s". */
export function formatMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms) || ms < 0) return DASH;
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  if (ms < 999.5) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  return s < 9.995 ? `${s.toFixed(2)} s` : `${s.toFixed(1)} s`;
}

/** Binary units, as file managers show them: 512 → "512 B", 2048 → "2 KB", 5.5 MiB → "5.5 MB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return DASH;
  if (bytes < 1024) return `${Math.round(bytes)} B`;
  const units = ['KB', 'MB', 'GB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const text = value < 10 ? value.toFixed(1) : Math.round(value).toString();
  return `${text.endsWith('.0') ? text.slice(0, -2) : text} ${units[unit]}`;
}

/**
 * ImageNet labels often carry synonyms: "tabby, tabby cat". The first one is
 * the headline; the rest are shown muted.
 */
export function splitLabel(label: string): { primary: string; synonyms: string } {
  const parts = String(label ?? '')
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean);
  if (parts.length === 0) return { primary: 'Unknown', synonyms: '' };
  const [first, ...rest] = parts;
  return { primary: first.charAt(0).toUpperCase() + first.slice(1), synonyms: rest.join(', ') };
}

/** Local wall-clock time as HH:MM:SS (24 h), independent of the browser's locale. */
export function formatClock(date: Date): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime())) return DASH;
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** "1 image" / "3 images". */
export function plural(count: number, singular: string, pluralForm = `${singular}s`): string {
  return `${count} ${count === 1 ? singular : pluralForm}`;
}
