/**
 * Reading settings from the environment, once, at start-up. Each read returns a typed value
 * or its default; an invalid value is recorded and read as its default, so that `done()` can
 * throw one ConfigError that lists every invalid variable, each in the same form:
 *
 *   NAME="value" is invalid; valid values: an integer from 1 to 64 (default 4).
 *
 * Values are trimmed, and an empty value counts as unset. Booleans are spelled true/false,
 * 1/0, yes/no or on/off, in any case.
 */

import { isIP } from 'node:net';

export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  override name = 'ConfigError';
  readonly problems: readonly string[];

  constructor(problems: string | readonly string[]) {
    const list = typeof problems === 'string' ? [problems] : problems;
    super(list.length === 1 ? list[0] : `${list.length} settings are invalid:\n  - ${list.join('\n  - ')}`);
    this.problems = list;
  }
}

export const TRUE_WORDS = ['true', '1', 'yes', 'on'] as const;
export const FALSE_WORDS = ['false', '0', 'no', 'off'] as const;

/** Decimal notation only (`1e7` included): no hex, no `Infinity`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** RFC 1123 host names: dot-separated labels of letters, digits and inner hyphens. */
const HOST_NAME = /^(?=.{1,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;

export interface StringRule {
  pattern: RegExp;
  /** What a valid value looks like, for the message. */
  valid: string;
  /** Never echo the value (a secret): the message gives its length instead. */
  secret?: boolean;
}

export interface EnvReader {
  int(name: string, fallback: number, min: number, max: number): number;
  number(name: string, fallback: number, min: number, max: number): number;
  bool(name: string, fallback: boolean): boolean;
  oneOf<T extends string>(name: string, values: readonly T[], fallback: T): T;
  string(name: string, fallback: string, rule?: StringRule): string;
  /** An address to listen on: an IP address, or a host name. */
  host<T extends string | undefined>(name: string, fallback: T): string | T;
  /** The variable's trimmed value, or undefined when unset or empty. */
  raw(name: string): string | undefined;
  /** Records `name`'s value as invalid, for checks the reader has no method for. */
  invalid(name: string, valid: string, options?: { secret?: boolean }): void;
  /** Records a problem that spans several variables. */
  problem(message: string): void;
  /** Throws a ConfigError listing every problem recorded, if any. */
  done(): void;
}

export function envReader(env: Env): EnvReader {
  const problems: string[] = [];
  const raw = (name: string): string | undefined => {
    const value = env[name]?.trim();
    return value === undefined || value === '' ? undefined : value;
  };
  const invalid = (name: string, valid: string, { secret = false } = {}): void => {
    const value = raw(name) ?? '';
    const shown = secret ? ` (${value.length} characters)` : `=${JSON.stringify(value)}`;
    problems.push(`${name}${shown} is invalid; valid values: ${valid}.`);
  };
  const number = (name: string, fallback: number, min: number, max: number, integer = false): number => {
    const text = raw(name);
    if (text === undefined) return fallback;
    const value = Number(text);
    if (!DECIMAL.test(text) || value < min || value > max || (integer && !Number.isInteger(value))) {
      invalid(name, `${integer ? 'an integer' : 'a number'} from ${min} to ${max} (default ${fallback})`);
      return fallback;
    }
    return value;
  };
  return {
    raw,
    invalid,
    number,
    int: (name, fallback, min, max) => number(name, fallback, min, max, true),
    bool(name, fallback) {
      const text = raw(name)?.toLowerCase();
      if (text === undefined) return fallback;
      if ((TRUE_WORDS as readonly string[]).includes(text)) return true;
      if ((FALSE_WORDS as readonly string[]).includes(text)) return false;
      invalid(name, `true or false (also 1/0, yes/no, on/off) (default ${fallback})`);
      return fallback;
    },
    oneOf(name, values, fallback) {
      const text = raw(name);
      if (text === undefined) return fallback;
      if (values.includes(text as (typeof values)[number])) return text as (typeof values)[number];
      invalid(name, `${values.join(', ')} (default ${fallback})`);
      return fallback;
    },
    string(name, fallback, rule) {
      const text = raw(name);
      if (text === undefined) return fallback;
      if (!rule || rule.pattern.test(text)) return text;
      invalid(name, `${rule.valid}${rule.secret || fallback === '' ? '' : ` (default ${fallback})`}`, { secret: rule.secret });
      return fallback;
    },
    host(name, fallback) {
      const text = raw(name);
      if (text === undefined) return fallback;
      if (isIP(text) || HOST_NAME.test(text)) return text;
      invalid(name, `an IP address to listen on (0.0.0.0 or :: for every interface, 127.0.0.1 for this machine only) or a host name${fallback === undefined ? '' : ` (default ${fallback})`}`);
      return fallback;
    },
    problem: (message) => void problems.push(message),
    done() {
      if (problems.length > 0) throw new ConfigError(problems);
    },
  };
}
