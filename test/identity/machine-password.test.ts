import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestInput } from '../../src/audit/audit-record.js';
import { createPasswordAuditor } from '../../src/cli/password-guard.js';
import { CmdopError } from '../../src/errors.js';
import {
  backoffDelayMs,
  clearPassword,
  isUnlocked,
  lock,
  passwordPath,
  passwordStatus,
  requireUnlocked,
  setPassword,
  unlock,
  unlockSessionPath,
  type MachinePasswordOptions,
  type PasswordAttempt,
} from '../../src/identity/machine-password.js';

const PASSWORD = 'correct horse battery';
const WRONG = 'wrong horse battery';

let home: string;
let nowMs: number;
let attempts: PasswordAttempt[];
let options: MachinePasswordOptions;
const clock = (): Date => new Date(nowMs);

beforeEach(async () => {
  home = await mkdtemp(join(tmpdir(), 'cmdop-password-'));
  nowMs = Date.parse('2030-01-01T00:00:00.000Z');
  attempts = [];
  // A cheap scrypt cost and a hand-driven clock keep the suite fast; the CLI tests use the real ones.
  options = {
    now: clock,
    cost: { N: 2 ** 10, r: 8, p: 1 },
    recordAttempt: (attempt) => {
      attempts.push(attempt);
      return Promise.resolve();
    },
  };
});

afterEach(async () => {
  await rm(home, { recursive: true, force: true });
});

/** The CmdopError a promise rejects with. */
async function failure(promise: Promise<unknown>): Promise<CmdopError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof CmdopError) return error;
    throw error;
  }
  throw new Error('expected a CmdopError, got success');
}

const advance = (ms: number): void => {
  nowMs += ms;
};

describe('setPassword', () => {
  it('stores a salted scrypt hash in a 0600 file, never the password', async () => {
    const result = await setPassword(home, PASSWORD, {}, options);
    expect(result).toEqual({ set: true, set_at: '2030-01-01T00:00:00.000Z', changed: false });
    const text = await readFile(passwordPath(home), 'utf8');
    expect(text).not.toContain(PASSWORD);
    expect(text).not.toContain(Buffer.from(PASSWORD).toString('base64'));
    const record = JSON.parse(text) as Record<string, unknown>;
    expect(record).toMatchObject({ version: 1, algorithm: 'scrypt', N: 1024, r: 8, p: 1, set_at: '2030-01-01T00:00:00.000Z', failures: 0 });
    expect(Buffer.from(record['salt'] as string, 'base64')).toHaveLength(16);
    expect(Buffer.from(record['hash'] as string, 'base64')).toHaveLength(32);
    expect((await stat(passwordPath(home))).mode & 0o777).toBe(0o600);
  });

  it('uses a fresh salt each time, so equal passwords hash differently', async () => {
    await setPassword(home, PASSWORD, {}, options);
    const first = JSON.parse(await readFile(passwordPath(home), 'utf8')) as { salt: string; hash: string };
    await setPassword(home, PASSWORD, { current: PASSWORD }, options);
    const second = JSON.parse(await readFile(passwordPath(home), 'utf8')) as { salt: string; hash: string };
    expect(second.salt).not.toBe(first.salt);
    expect(second.hash).not.toBe(first.hash);
  });

  it('uses the full default cost (N = 2^15) unless told otherwise', async () => {
    await setPassword(home, PASSWORD, {}, { now: clock });
    expect(JSON.parse(await readFile(passwordPath(home), 'utf8'))).toMatchObject({ N: 2 ** 15, r: 8, p: 1 });
    await expect(unlock(home, PASSWORD, {}, { now: clock })).resolves.toMatchObject({ unlocked: true });
  });

  it.each([
    ['a number', 12345678],
    ['nothing', undefined],
    ['an empty string', ''],
    ['7 characters', 'abcdefg'],
    ['7 characters of 2 code units each', '😀😀😀😀😀😀😀'],
    ['1025 characters', 'x'.repeat(1025)],
  ])('refuses %s as a new password without writing anything', async (_what, password: unknown) => {
    const error = await failure(setPassword(home, password, {}, options));
    expect(error.code).toBe('invalid_input');
    await expect(stat(passwordPath(home))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('accepts 8 and 1024 characters', async () => {
    await setPassword(home, 'abcdefgh', {}, options);
    await setPassword(home, 'y'.repeat(1024), { current: 'abcdefgh' }, options);
    await expect(unlock(home, 'y'.repeat(1024), {}, options)).resolves.toMatchObject({ unlocked: true });
  });

  it('refuses a loose or foreign-looking password file', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await chmod(passwordPath(home), 0o644);
    expect((await failure(passwordStatus(home))).code).toBe('config');
    expect((await failure(unlock(home, PASSWORD, {}, options))).code).toBe('config');
    expect((await failure(requireUnlocked(home))).code).toBe('config');
  });

  it('refuses a damaged password file, and one whose cost would be absurd', async () => {
    await setPassword(home, PASSWORD, {}, options);
    const record = JSON.parse(await readFile(passwordPath(home), 'utf8')) as Record<string, unknown>;
    await writeFile(passwordPath(home), JSON.stringify({ ...record, N: 2 ** 30 }), { mode: 0o600 });
    const error = await failure(unlock(home, PASSWORD, {}, options));
    expect(error.code).toBe('config');
    expect(error.message).toContain('N');
    await writeFile(passwordPath(home), '{not json', { mode: 0o600 });
    expect((await failure(passwordStatus(home))).code).toBe('config');
  });

  it('changing needs the current password', async () => {
    await setPassword(home, PASSWORD, {}, options);
    const missing = await failure(setPassword(home, 'new password 1', {}, options));
    expect(missing.code).toBe('invalid_input');
    const wrong = await failure(setPassword(home, 'new password 1', { current: WRONG }, options));
    expect(wrong.code).toBe('denied');
    expect(attempts.map((a) => [a.action, a.decision])).toEqual([['change', 'deny']]);
    advance(1_000);
    await expect(setPassword(home, 'new password 1', { current: PASSWORD }, options)).resolves.toMatchObject({ changed: true });
    expect((await failure(unlock(home, PASSWORD, {}, options))).code).toBe('denied');
    advance(2_000);
    await expect(unlock(home, 'new password 1', {}, options)).resolves.toMatchObject({ unlocked: true });
  });

  it('a change ends the unlock session, even one written back afterwards', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await unlock(home, PASSWORD, {}, options);
    const session = await readFile(unlockSessionPath(home), 'utf8');
    await setPassword(home, 'new password 1', { current: PASSWORD }, options);
    expect(await isUnlocked(home, new Date(nowMs))).toBe(false);
    // The session is bound to the password it unlocked.
    await writeFile(unlockSessionPath(home), session, { mode: 0o600 });
    expect(await isUnlocked(home, new Date(nowMs))).toBe(false);
  });
});

describe('wrong passwords', () => {
  it('are denied, and the delay doubles up to 30 s, persisted in password.json', async () => {
    await setPassword(home, PASSWORD, {}, options);
    const delays: number[] = [];
    for (let i = 1; i <= 7; i++) {
      const error = await failure(unlock(home, WRONG, {}, options));
      expect(error.code).toBe('denied');
      expect(error.exitCode).toBe(3);
      expect(error.details).toMatchObject({ failures: i });
      const retryAt = Date.parse(String(error.details?.['retry_at']));
      delays.push(retryAt - nowMs);
      // Nothing in memory: a fresh call (as from another process) sees the same state in the file.
      const record = JSON.parse(await readFile(passwordPath(home), 'utf8')) as { failures: number; last_failure_at: string };
      expect(record).toMatchObject({ failures: i, last_failure_at: new Date(nowMs).toISOString() });
      expect(await passwordStatus(home, { now: clock })).toMatchObject({ failures: i, retry_at: new Date(retryAt).toISOString() });
      nowMs = retryAt;
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000]);
  });

  it('any attempt during the delay, even with the right password, is rate_limited without being checked', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await failure(unlock(home, WRONG, {}, options));
    advance(999);
    const early = await failure(unlock(home, PASSWORD, {}, options));
    expect(early.code).toBe('rate_limited');
    expect(early.exitCode).toBe(8);
    expect(early.details).toEqual({ retry_at: '2030-01-01T00:00:01.000Z' });
    expect(early.message).toContain('try again in 1 s');
    // Refused before checking: the failure count did not grow.
    expect(JSON.parse(await readFile(passwordPath(home), 'utf8'))).toMatchObject({ failures: 1 });
    expect((await failure(clearPassword(home, PASSWORD, options))).code).toBe('rate_limited');
    expect((await failure(setPassword(home, 'new password 1', { current: PASSWORD }, options))).code).toBe('rate_limited');
    advance(1);
    await expect(unlock(home, PASSWORD, {}, options)).resolves.toMatchObject({ unlocked: true });
  });

  it('the right password resets the count', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await failure(unlock(home, WRONG, {}, options));
    advance(1_000);
    await failure(unlock(home, WRONG, {}, options));
    advance(2_000);
    await unlock(home, PASSWORD, {}, options);
    expect(await passwordStatus(home, { now: clock })).toMatchObject({ failures: 0, retry_at: null });
    const error = await failure(unlock(home, WRONG, {}, options));
    expect(error.details).toMatchObject({ failures: 1 });
  });

  it('parallel attempts cannot guess past the delay', async () => {
    await setPassword(home, PASSWORD, {}, options);
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => unlock(home, WRONG, {}, options)));
    const codes = results.map((r) => (r.status === 'rejected' && r.reason instanceof CmdopError ? r.reason.code : 'ok'));
    expect(codes.filter((c) => c === 'denied')).toHaveLength(1);
    expect(codes.filter((c) => c === 'rate_limited')).toHaveLength(4);
  });

  it('a failure stamped far in the future (the clock was turned back) does not lock the owner out', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await failure(unlock(home, WRONG, {}, options));
    nowMs -= 86_400_000;
    await expect(unlock(home, PASSWORD, {}, options)).resolves.toMatchObject({ unlocked: true });
  });

  it.each([
    [0, 0],
    [1, 1_000],
    [2, 2_000],
    [5, 16_000],
    [6, 30_000],
    [10_000, 30_000],
  ])('backoffDelayMs(%i) is %i', (failures, delay) => {
    expect(backoffDelayMs(failures)).toBe(delay);
  });
});

describe('unlock, lock and the guard', () => {
  it('unlocks for the TTL, in a 0600 session file under a 0700 run/', async () => {
    await setPassword(home, PASSWORD, {}, options);
    expect(await isUnlocked(home, new Date(nowMs))).toBe(false);
    const result = await unlock(home, PASSWORD, { ttlMs: 60_000 }, options);
    expect(result).toMatchObject({ unlocked: true, unlocked_until: '2030-01-01T00:01:00.000Z' });
    expect(result.session_id).toMatch(/^[0-9a-f]{16}$/);
    expect((await stat(unlockSessionPath(home))).mode & 0o777).toBe(0o600);
    expect((await stat(join(home, 'run'))).mode & 0o777).toBe(0o700);
    const session = await readFile(unlockSessionPath(home), 'utf8');
    expect(session).not.toContain(PASSWORD);
    expect(JSON.parse(session)).toMatchObject({ version: 1, uid: process.getuid?.() ?? null, expires_at: '2030-01-01T00:01:00.000Z' });

    expect(await isUnlocked(home, new Date(nowMs + 59_999))).toBe(true);
    await expect(requireUnlocked(home, new Date(nowMs + 59_999))).resolves.toBeUndefined();
    expect(await passwordStatus(home, { now: () => new Date(nowMs + 59_999) })).toMatchObject({ set: true, unlocked: true, unlocked_until: '2030-01-01T00:01:00.000Z' });
    expect(await isUnlocked(home, new Date(nowMs + 60_000))).toBe(false);
    const locked = await failure(requireUnlocked(home, new Date(nowMs + 60_000)));
    expect(locked.code).toBe('denied');
    expect(locked.message).toBe('this machine is locked: run `cmdop password unlock` first');
  });

  it('defaults to 15 minutes and refuses more than 24 h', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await expect(unlock(home, PASSWORD, {}, options)).resolves.toMatchObject({ unlocked_until: '2030-01-01T00:15:00.000Z' });
    expect((await failure(unlock(home, PASSWORD, { ttlMs: 24 * 3_600_000 + 1 }, options))).code).toBe('invalid_input');
    expect((await failure(unlock(home, PASSWORD, { ttlMs: 0 }, options))).code).toBe('invalid_input');
  });

  it('lock ends the session', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await unlock(home, PASSWORD, {}, options);
    expect(await lock(home)).toEqual({ locked: true, removed: true });
    expect(await isUnlocked(home, new Date(nowMs))).toBe(false);
    expect(await lock(home)).toEqual({ locked: true, removed: false });
  });

  it('a tampered, loose or stretched session does not unlock', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await unlock(home, PASSWORD, {}, options);
    const session = JSON.parse(await readFile(unlockSessionPath(home), 'utf8')) as Record<string, unknown>;
    await writeFile(unlockSessionPath(home), JSON.stringify({ ...session, expires_at: '2031-01-01T00:00:00.000Z' }), { mode: 0o600 });
    expect(await isUnlocked(home, new Date(nowMs))).toBe(false);
    await writeFile(unlockSessionPath(home), JSON.stringify({ ...session, uid: 4242 }), { mode: 0o600 });
    expect(await isUnlocked(home, new Date(nowMs))).toBe(false);
    await writeFile(unlockSessionPath(home), 'garbage', { mode: 0o600 });
    expect(await isUnlocked(home, new Date(nowMs))).toBe(false);
    await writeFile(unlockSessionPath(home), JSON.stringify(session), { mode: 0o600 });
    expect(await isUnlocked(home, new Date(nowMs))).toBe(true);
    await chmod(unlockSessionPath(home), 0o644);
    expect((await failure(isUnlocked(home, new Date(nowMs)))).code).toBe('config');
  });

  it('without a password the guard lets everything through and unlock says there is none', async () => {
    await expect(requireUnlocked(home)).resolves.toBeUndefined();
    expect(await passwordStatus(home)).toEqual({ set: false, set_at: null, unlocked: false, unlocked_until: null, failures: 0, retry_at: null });
    expect((await failure(unlock(home, PASSWORD, {}, options))).code).toBe('not_found');
    expect((await failure(clearPassword(home, PASSWORD, options))).code).toBe('not_found');
  });
});

describe('clearPassword', () => {
  it('needs the current password, then removes the password and the session', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await unlock(home, PASSWORD, {}, options);
    const wrong = await failure(clearPassword(home, WRONG, options));
    expect(wrong.code).toBe('denied');
    expect((await passwordStatus(home, { now: clock })).set).toBe(true);
    advance(1_000);
    expect(await clearPassword(home, PASSWORD, options)).toEqual({ set: false });
    expect((await passwordStatus(home)).set).toBe(false);
    await expect(stat(unlockSessionPath(home))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(attempts.map((a) => [a.action, a.decision])).toEqual([
      ['unlock', 'allow'],
      ['clear', 'deny'],
      ['clear', 'allow'],
    ]);
  });
});

describe('audit', () => {
  it('records every unlock attempt, allowed and denied, before the session starts', async () => {
    await setPassword(home, PASSWORD, {}, options);
    await failure(unlock(home, WRONG, {}, options));
    await failure(unlock(home, PASSWORD, {}, options));
    advance(1_000);
    await unlock(home, PASSWORD, {}, options);
    expect(attempts.map((a) => [a.action, a.decision])).toEqual([
      ['unlock', 'deny'],
      ['unlock', 'deny'],
      ['unlock', 'allow'],
    ]);
    expect(attempts[1]?.reason).toContain('refused unchecked');
  });

  it('a failing audit write leaves the machine locked', async () => {
    await setPassword(home, PASSWORD, {}, options);
    const broken: MachinePasswordOptions = { ...options, recordAttempt: () => Promise.reject(new CmdopError('internal', 'audit log unwritable')) };
    expect((await failure(unlock(home, PASSWORD, {}, broken))).message).toBe('audit log unwritable');
    expect(await isUnlocked(home, new Date(nowMs))).toBe(false);
  });

  it('writes audit lines without the password text, with the digest of an empty input', async () => {
    const audited: MachinePasswordOptions = { ...options, recordAttempt: createPasswordAuditor(home) };
    await setPassword(home, PASSWORD, {}, audited);
    await failure(unlock(home, WRONG, {}, audited));
    advance(1_000);
    await unlock(home, PASSWORD, {}, audited);
    await setPassword(home, 'new password 1', { current: PASSWORD }, audited);
    await clearPassword(home, 'new password 1', audited);
    const log = await readFile(join(home, 'logs', 'audit.log'), 'utf8');
    for (const secret of [PASSWORD, WRONG, 'new password 1']) expect(log).not.toContain(secret);
    const lines = log.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => [l['tool'], l['decision']])).toEqual([
      ['password_unlock', 'deny'],
      ['password_unlock', 'allow'],
      ['password_set', 'allow'],
      ['password_clear', 'allow'],
    ]);
    for (const line of lines) {
      expect(line).toMatchObject({ event: 'decision', target: '', source: 'local', hostname: 'local', rule: null, input_digest: digestInput({}) });
      expect(typeof line['user']).toBe('string');
    }
    expect(lines[0]?.['ts']).toBe('2030-01-01T00:00:00.000Z');
  });
});

describe('CMDOP_PASSWORD_DELAY_MS', () => {
  it('can only lengthen the first delay, up to the 30 s cap', async () => {
    const { currentBackoff, DEFAULT_BACKOFF } = await import('../../src/identity/machine-password.js');
    expect(currentBackoff({})).toEqual(DEFAULT_BACKOFF);
    expect(currentBackoff({ CMDOP_PASSWORD_DELAY_MS: '5000' })).toEqual({ baseMs: 5000, maxMs: 30_000 });
    expect(currentBackoff({ CMDOP_PASSWORD_DELAY_MS: '10' })).toEqual(DEFAULT_BACKOFF);
    expect(currentBackoff({ CMDOP_PASSWORD_DELAY_MS: '0' })).toEqual(DEFAULT_BACKOFF);
    expect(currentBackoff({ CMDOP_PASSWORD_DELAY_MS: 'soon' })).toEqual(DEFAULT_BACKOFF);
    expect(currentBackoff({ CMDOP_PASSWORD_DELAY_MS: '999999' })).toEqual({ baseMs: 30_000, maxMs: 30_000 });
  });
});
