import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { createLogger, type Level } from '../log.ts';

function capture(expected?: (err: unknown) => boolean) {
  const lines: { level: Level; entry: Record<string, unknown>; text: string }[] = [];
  const log = createLogger({
    expected,
    now: () => new Date('2026-01-02T03:04:05.000Z'),
    write: (level, text) => lines.push({ level, entry: JSON.parse(text), text }),
  });
  return { log, lines };
}

const log = suite('server-kit: JSON-lines logger');

log('one JSON object per line: time, level, msg, then the fields', () => {
  const { log, lines } = capture();
  log.info('listening', { port: 8080 });
  log.warn('slow');
  log.error('failed', { path: '/x' });
  assert.equal(lines.map((l) => l.level), ['info', 'warn', 'error']);
  assert.equal(lines[0].entry, { time: '2026-01-02T03:04:05.000Z', level: 'info', msg: 'listening', port: 8080 });
  assert.is(lines[0].text, '{"time":"2026-01-02T03:04:05.000Z","level":"info","msg":"listening","port":8080}');
  assert.not.ok(lines[0].text.includes('\n'));
});

log('a field cannot overwrite time, level or msg', () => {
  const { log, lines } = capture();
  log.info('real', { msg: 'forged', level: 'error', time: 'never', other: 1 });
  assert.equal(lines[0].entry, { time: '2026-01-02T03:04:05.000Z', level: 'info', msg: 'real', other: 1 });
});

log('methods are bound: log.info can be passed on as (msg) => void', () => {
  const { log, lines } = capture();
  const pass = (fn: (msg: string) => void) => fn('through');
  pass(log.info);
  assert.is(lines[0].entry.msg, 'through');
});

class ClientFault extends Error {}

log('an error keeps its stack unless it is expected (a client error)', () => {
  const { log, lines } = capture((err) => err instanceof ClientFault);
  const bug = Object.assign(new TypeError('x is undefined'), { code: 'E_BUG' });
  log.error('request failed', { error: bug });
  log.error('refused', { error: new ClientFault('bad input') });
  const [first, second] = lines.map((l) => l.entry.error as Record<string, unknown>);
  assert.is(first.name, 'TypeError');
  assert.is(first.message, 'x is undefined');
  assert.is(first.code, 'E_BUG');
  assert.match(String(first.stack), /TypeError: x is undefined\n\s+at /);
  assert.equal(second, { name: 'Error', message: 'bad input' });
});

log('errors nested in fields are serialised too; cycles and bigints never throw', () => {
  const { log, lines } = capture();
  log.error('nested', { details: { cause: new Error('inner') } });
  assert.is((lines[0].entry.details as { cause: { message: string } }).cause.message, 'inner');
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  log.info('cyclic', { cycle });
  assert.equal(lines[1].entry, { time: '2026-01-02T03:04:05.000Z', level: 'info', msg: 'cyclic', fields: 'not serialisable' });
  log.info('big', { n: 10n });
  assert.is(lines[2].entry.n, '10');
});

log.run();
