/**
 * The machine password (issue 4 §5): a slow salted scrypt hash in `CMDOP_HOME/password.json`
 * (0600), and an unlock session in `CMDOP_HOME/run/unlock.json` that lets the local CLI change
 * permissions and call other hosts for a limited time. The password itself is never stored,
 * printed or logged. Wrong passwords are slowed down by a delay that doubles with each failure
 * and is kept in `password.json`, so separate CLI processes share it.
 */
import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { CmdopError, systemErrorCode } from '../errors.js';
import { ensureCmdopHome, ensurePrivateDir, runDir } from '../config/cmdop-home.js';
import { withFileLock } from '../config/file-lock.js';
import { readSecureFile, removeTempFiles, writeFileAtomic } from '../config/secure-file.js';

/** Fewest characters (Unicode code points) a new password may have. */
export const PASSWORD_MIN_LENGTH = 8;

/** Most characters a password may have; longer input is refused before it is hashed. */
export const PASSWORD_MAX_LENGTH = 1024;

/** How long `unlock` keeps the machine unlocked unless told otherwise. */
export const DEFAULT_UNLOCK_TTL_MS = 15 * 60_000;

/** The longest unlock session `unlock` grants. */
export const MAX_UNLOCK_TTL_MS = 24 * 3_600_000;

/** scrypt parameters: N (CPU/memory cost, a power of two), r (block size), p (parallelism). */
export interface ScryptCost {
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/** The cost of new hashes: about 32 MiB and a tenth of a second per attempt. */
export const DEFAULT_SCRYPT_COST: ScryptCost = { N: 2 ** 15, r: 8, p: 1 };

/** The delay after the n-th wrong password in a row is `baseMs * 2^(n-1)`, at most `maxMs`. */
export interface PasswordBackoff {
  readonly baseMs: number;
  readonly maxMs: number;
}

/** 1 s, 2 s, 4 s ... capped at 30 s. */
export const DEFAULT_BACKOFF: PasswordBackoff = { baseMs: 1_000, maxMs: 30_000 };

/**
 * The delay schedule in force: {@link DEFAULT_BACKOFF}, or a longer first delay from
 * `CMDOP_PASSWORD_DELAY_MS` (1 000 to 30 000). It can only slow guessing down, never speed it up.
 */
export function currentBackoff(env: Readonly<Record<string, string | undefined>> = process.env): PasswordBackoff {
  const wanted = Number(env.CMDOP_PASSWORD_DELAY_MS);
  if (!Number.isSafeInteger(wanted) || wanted <= DEFAULT_BACKOFF.baseMs) return DEFAULT_BACKOFF;
  return { baseMs: Math.min(wanted, DEFAULT_BACKOFF.maxMs), maxMs: DEFAULT_BACKOFF.maxMs };
}

/** Which operation checked a password. */
export type PasswordAction = 'unlock' | 'change' | 'clear';

/** One password check, for the audit log; it never holds the password. */
export interface PasswordAttempt {
  readonly action: PasswordAction;
  readonly decision: 'allow' | 'deny';
  readonly reason: string;
  readonly at: Date;
}

/** Records a password check (the audit log, wired by the CLI); a rejection fails the operation. */
export type PasswordAttemptRecorder = (attempt: PasswordAttempt) => Promise<void>;

/** Side effects and tunables of the machine-password functions, all optional. */
export interface MachinePasswordOptions {
  /** The clock; the current time when absent. */
  readonly now?: () => Date;
  /** The delay schedule for wrong passwords; {@link DEFAULT_BACKOFF} when absent. */
  readonly backoff?: PasswordBackoff;
  /** The scrypt cost of a new hash; {@link DEFAULT_SCRYPT_COST} when absent. Checks use the cost stored with the hash. */
  readonly cost?: ScryptCost;
  /** Called once for every password check, allowed or denied; an unlock session starts only once it resolved. */
  readonly recordAttempt?: PasswordAttemptRecorder;
}

/** What `passwordStatus` reports; never a secret. */
export interface PasswordStatus {
  readonly set: boolean;
  readonly set_at: string | null;
  readonly unlocked: boolean;
  readonly unlocked_until: string | null;
  /** Wrong passwords in a row since the last right one. */
  readonly failures: number;
  /** When the next attempt is accepted; null when one is accepted now. */
  readonly retry_at: string | null;
}

/** The result of `setPassword`. */
export interface SetPasswordResult {
  readonly set: true;
  readonly set_at: string;
  /** True when an existing password was replaced. */
  readonly changed: boolean;
}

/** The result of `unlock`. */
export interface UnlockResult {
  readonly unlocked: true;
  readonly unlocked_until: string;
  /** A short, non-secret name of this session (a prefix of its token's hash). */
  readonly session_id: string;
}

/** The result of `lock`. */
export interface LockResult {
  readonly locked: true;
  /** False when there was no unlock session to end. */
  readonly removed: boolean;
}

/** The result of `clearPassword`. */
export interface ClearPasswordResult {
  readonly set: false;
}

/** `CMDOP_HOME/password.json`. */
export function passwordPath(home: string): string {
  return join(home, 'password.json');
}

/** `CMDOP_HOME/run/unlock.json`. */
export function unlockSessionPath(home: string): string {
  return join(runDir(home), 'unlock.json');
}

const base64 = (minBytes: number, maxBytes: number): z.ZodEffects<z.ZodString> =>
  z
    .string()
    .regex(/^[A-Za-z0-9+/]+={0,2}$/, 'must be base64')
    .refine((text) => {
      const length = Buffer.from(text, 'base64').length;
      return length >= minBytes && length <= maxBytes;
    }, `must hold ${minBytes} to ${maxBytes} bytes`);

// Bounds on a stored cost, so an edited file cannot make a check take minutes or gigabytes.
const recordSchema = z.object({
  version: z.literal(1),
  algorithm: z.literal('scrypt'),
  N: z
    .number()
    .int()
    .min(2 ** 10)
    .max(2 ** 20)
    .refine((n) => (n & (n - 1)) === 0, 'must be a power of two'),
  r: z.number().int().min(1).max(32),
  p: z.number().int().min(1).max(16),
  salt: base64(16, 64),
  hash: base64(32, 64),
  set_at: z.string().datetime({ offset: true }),
  failures: z.number().int().min(0).default(0),
  last_failure_at: z.string().datetime({ offset: true }).nullable().default(null),
});

type PasswordRecord = z.infer<typeof recordSchema>;

const sessionSchema = z.object({
  version: z.literal(1),
  uid: z.number().int().nullable(),
  token_sha256: z.string().regex(/^[0-9a-f]{64}$/),
  password_id: z.string().regex(/^[0-9a-f]{64}$/),
  created_at: z.string().datetime({ offset: true }),
  expires_at: z.string().datetime({ offset: true }),
});

type UnlockSession = z.infer<typeof sessionSchema>;

/**
 * Sets the machine password, or changes it: replacing an existing one needs `current`, checked
 * (and slowed down when wrong) like an unlock. A change ends the current unlock session.
 */
export async function setPassword(
  home: string,
  password: unknown,
  { current }: { readonly current?: unknown } = {},
  options: MachinePasswordOptions = {},
): Promise<SetPasswordResult> {
  const fresh = checkNewPassword(password);
  await ensureCmdopHome(home);
  // Hashed before taking the lock, which other processes may be waiting for.
  const next = await hashPassword(fresh, options.cost ?? DEFAULT_SCRYPT_COST, clock(options)());
  const file = passwordPath(home);
  const created = await withFileLock(file, async (held) => {
    await removeTempFiles(file);
    if ((await readSecureFile(file)) !== undefined) return false;
    held.assertHeld();
    await writeFileAtomic(file, serialize(next), 0o600, { beforeRename: held.assertHeld });
    return true;
  });
  if (!created) {
    if (current === undefined) {
      throw new CmdopError('invalid_input', 'a machine password is already set: changing it requires the current one', {
        hint: 'Give the current password, then the new one, each on its own line: cmdop password set',
      });
    }
    await checkAttempt(home, current, 'change', options, () => next);
    await lock(home);
  }
  return { set: true, set_at: next.set_at, changed: !created };
}

/** Removes the machine password after checking `current`, and ends the unlock session. */
export async function clearPassword(home: string, current: unknown, options: MachinePasswordOptions = {}): Promise<ClearPasswordResult> {
  await checkAttempt(home, current, 'clear', options, () => undefined);
  await lock(home);
  return { set: false };
}

/** Whether a password is set, whether the machine is unlocked and until when, and any wrong-password delay. */
export async function passwordStatus(home: string, options: Pick<MachinePasswordOptions, 'now' | 'backoff'> = {}): Promise<PasswordStatus> {
  const now = clock(options)();
  const record = await readRecord(home);
  if (record === undefined) return { set: false, set_at: null, unlocked: false, unlocked_until: null, failures: 0, retry_at: null };
  const session = await readValidSession(home, record, now);
  const retryAt = retryTime(record, options.backoff ?? currentBackoff(), now);
  return {
    set: true,
    set_at: record.set_at,
    unlocked: session !== undefined,
    unlocked_until: session?.expires_at ?? null,
    failures: record.failures,
    retry_at: retryAt === undefined ? null : retryAt.toISOString(),
  };
}

/** True when a password is set and a valid unlock session for it has not expired at `now`. */
export async function isUnlocked(home: string, now: Date = new Date()): Promise<boolean> {
  const record = await readRecord(home);
  return record !== undefined && (await readValidSession(home, record, now)) !== undefined;
}

/**
 * Throws CmdopError('denied') when a machine password is set and no unlock session is valid;
 * returns quietly when no password is set or the machine is unlocked. The CLI runs it before
 * changing permissions or calling hosts, and the daemon before a local caller calls a host,
 * takes an OAuth token, or answers a prompt with a rule.
 */
export async function requireUnlocked(home: string, now: Date = new Date()): Promise<void> {
  const status = await passwordStatus(home, { now: () => now });
  if (status.set && !status.unlocked) {
    throw new CmdopError('denied', 'this machine is locked: run `cmdop password unlock` first', {
      hint: 'A machine password guards permission changes and calls to other hosts here; an unlock lasts 15 minutes unless --ttl says otherwise.',
      details: { locked: true },
    });
  }
}

/**
 * Checks `password` and, when right, starts an unlock session of `ttlMs` in `run/unlock.json`.
 * A wrong password is CmdopError('denied'); any attempt during the delay that follows a wrong
 * one is CmdopError('rate_limited'), without the password being checked at all.
 */
export async function unlock(
  home: string,
  password: unknown,
  { ttlMs = DEFAULT_UNLOCK_TTL_MS }: { readonly ttlMs?: number } = {},
  options: MachinePasswordOptions = {},
): Promise<UnlockResult> {
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_UNLOCK_TTL_MS) {
    throw new CmdopError('invalid_input', `the unlock time must be between 1 ms and ${MAX_UNLOCK_TTL_MS / 3_600_000} h`, { hint: 'For example: --ttl 15m' });
  }
  const record = await checkAttempt(home, password, 'unlock', options, (current) => current);
  if (record === undefined) throw new CmdopError('internal', 'the password record vanished while unlocking');
  const now = clock(options)();
  const token = randomBytes(32);
  const session: UnlockSession = {
    version: 1,
    uid: process.getuid?.() ?? null,
    token_sha256: createHash('sha256').update(token).digest('hex'),
    password_id: passwordId(record),
    created_at: now.toISOString(),
    expires_at: new Date(now.getTime() + ttlMs).toISOString(),
  };
  await ensurePrivateDir(runDir(home));
  await writeFileAtomic(unlockSessionPath(home), `${JSON.stringify(session, null, 2)}\n`, 0o600);
  return { unlocked: true, unlocked_until: session.expires_at, session_id: session.token_sha256.slice(0, 16) };
}

/** Ends the unlock session, if there is one. */
export async function lock(home: string): Promise<LockResult> {
  try {
    await unlink(unlockSessionPath(home));
    return { locked: true, removed: true };
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return { locked: true, removed: false };
    throw new CmdopError('config', `cannot remove ${unlockSessionPath(home)}: ${systemErrorCode(error) ?? String(error)}`, {
      cause: error,
      hint: `Check that you own ${runDir(home)}, then run: rm ${unlockSessionPath(home)}`,
    });
  }
}

/** The delay after `failures` wrong passwords in a row. */
export function backoffDelayMs(failures: number, backoff: PasswordBackoff = DEFAULT_BACKOFF): number {
  if (failures <= 0) return 0;
  return Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(failures - 1, 30));
}

type Verdict =
  | { readonly kind: 'allow'; readonly record: PasswordRecord | undefined }
  | { readonly kind: 'wrong'; readonly failures: number; readonly retryAt: Date }
  | { readonly kind: 'rate_limited'; readonly retryAt: Date };

/**
 * Checks a password against `password.json` under its lock, so parallel processes cannot
 * guess past the delay: during a delay it refuses without checking; a wrong password extends
 * the delay; a right one resets it and replaces the record by what `onAllow` returns
 * (undefined removes the file). The attempt is recorded before this returns or throws.
 */
async function checkAttempt(
  home: string,
  password: unknown,
  action: PasswordAction,
  options: MachinePasswordOptions,
  onAllow: (record: PasswordRecord) => PasswordRecord | undefined,
): Promise<PasswordRecord | undefined> {
  const given = checkGivenPassword(password);
  const backoff = options.backoff ?? currentBackoff();
  const now = clock(options);
  const file = passwordPath(home);
  if ((await readRecord(home)) === undefined) throw notSet();
  const verdict = await withFileLock(file, async (held): Promise<Verdict> => {
    await removeTempFiles(file);
    const record = parseRecord(file, await readSecureFile(file));
    if (record === undefined) throw notSet();
    const retryAt = retryTime(record, backoff, now());
    if (retryAt !== undefined) return { kind: 'rate_limited', retryAt };
    const right = await verifyPassword(given, record);
    const at = now();
    if (!right) {
      const failures = Math.min(record.failures + 1, 1_000_000);
      held.assertHeld();
      await writeFileAtomic(file, serialize({ ...record, failures, last_failure_at: at.toISOString() }), 0o600, { beforeRename: held.assertHeld });
      return { kind: 'wrong', failures, retryAt: new Date(at.getTime() + backoffDelayMs(failures, backoff)) };
    }
    const next = onAllow({ ...record, failures: 0, last_failure_at: null });
    held.assertHeld();
    if (next === undefined) await unlink(file);
    else if (serialize(next) !== serialize(record)) await writeFileAtomic(file, serialize(next), 0o600, { beforeRename: held.assertHeld });
    return { kind: 'allow', record: next };
  });
  const at = now();
  switch (verdict.kind) {
    case 'allow':
      await options.recordAttempt?.({ action, decision: 'allow', reason: 'right password', at });
      return verdict.record;
    case 'wrong': {
      const wait = Math.ceil(backoffDelayMs(verdict.failures, backoff) / 1000);
      await options.recordAttempt?.({ action, decision: 'deny', reason: `wrong password (${verdict.failures} in a row)`, at });
      throw new CmdopError('denied', `wrong password (${verdict.failures} wrong in a row)`, {
        hint: `The next attempt is accepted after ${verdict.retryAt.toISOString()} (in ${wait} s).`,
        details: { failures: verdict.failures, retry_at: verdict.retryAt.toISOString() },
      });
    }
    case 'rate_limited': {
      const wait = Math.max(1, Math.ceil((verdict.retryAt.getTime() - at.getTime()) / 1000));
      await options.recordAttempt?.({ action, decision: 'deny', reason: `refused unchecked: too soon after a wrong password, retry after ${verdict.retryAt.toISOString()}`, at });
      throw new CmdopError('rate_limited', `too soon after a wrong password: try again in ${wait} s`, {
        hint: `The next attempt is accepted after ${verdict.retryAt.toISOString()}; attempts before then are refused unchecked.`,
        details: { retry_at: verdict.retryAt.toISOString() },
      });
    }
  }
}

/** When the next attempt is accepted, or undefined when one is accepted at `now`. */
function retryTime(record: PasswordRecord, backoff: PasswordBackoff, now: Date): Date | undefined {
  if (record.failures === 0 || record.last_failure_at === null) return undefined;
  const last = Date.parse(record.last_failure_at);
  // A failure stamped far in the future means the clock was turned back; a wait that long
  // would lock the owner out until the clock catches up.
  if (last > now.getTime() + backoff.maxMs) return undefined;
  const retryAt = last + backoffDelayMs(record.failures, backoff);
  return retryAt > now.getTime() ? new Date(retryAt) : undefined;
}

/** Validates a new password: a string of PASSWORD_MIN_LENGTH to PASSWORD_MAX_LENGTH characters. */
function checkNewPassword(password: unknown): string {
  const given = checkGivenPassword(password);
  if (codePoints(given) < PASSWORD_MIN_LENGTH) {
    throw new CmdopError('invalid_input', `the password is too short: use at least ${PASSWORD_MIN_LENGTH} characters`);
  }
  return given;
}

/** Validates a password offered for a check; errors never quote it. */
function checkGivenPassword(password: unknown): string {
  if (typeof password !== 'string') throw new CmdopError('invalid_input', 'the password must be text');
  if (password === '') throw new CmdopError('invalid_input', 'no password given', { hint: 'Type it when asked, or give it on the first line of standard input.' });
  if (codePoints(password) > PASSWORD_MAX_LENGTH) {
    throw new CmdopError('invalid_input', `the password is too long: at most ${PASSWORD_MAX_LENGTH} characters`);
  }
  // The same text typed on different keyboards can arrive composed or decomposed.
  return password.normalize('NFC');
}

/** Length in Unicode code points, so an emoji counts once, as a user would count it. */
function codePoints(text: string): number {
  return Array.from(text).length;
}

async function hashPassword(password: string, cost: ScryptCost, now: Date): Promise<PasswordRecord> {
  const salt = randomBytes(16);
  const hash = await derive(password, salt, 32, cost);
  return {
    version: 1,
    algorithm: 'scrypt',
    N: cost.N,
    r: cost.r,
    p: cost.p,
    salt: salt.toString('base64'),
    hash: hash.toString('base64'),
    set_at: now.toISOString(),
    failures: 0,
    last_failure_at: null,
  };
}

async function verifyPassword(password: string, record: PasswordRecord): Promise<boolean> {
  const expected = Buffer.from(record.hash, 'base64');
  const actual = await derive(password, Buffer.from(record.salt, 'base64'), expected.length, record);
  return timingSafeEqual(actual, expected);
}

function derive(password: string, salt: Buffer, keylen: number, cost: ScryptCost): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // scrypt needs 128·N·r bytes; Node's default cap (32 MiB) is exactly what N=2^15, r=8 needs and refuses it.
    const maxmem = 256 * cost.N * cost.r + 1024 * 1024;
    scrypt(Buffer.from(password, 'utf8'), salt, keylen, { N: cost.N, r: cost.r, p: cost.p, maxmem }, (error, key) => {
      if (error === null) resolve(key);
      else reject(new CmdopError('internal', `cannot compute the password hash: ${error.message}`, { cause: error }));
    });
  });
}

/** Names the current password without revealing anything about it, so a session ends when it changes. */
function passwordId(record: PasswordRecord): string {
  return createHash('sha256').update(`${record.salt}:${record.hash}`, 'utf8').digest('hex');
}

async function readRecord(home: string): Promise<PasswordRecord | undefined> {
  const file = passwordPath(home);
  return parseRecord(file, await readSecureFile(file, { maxBytes: 64 * 1024 }));
}

function parseRecord(file: string, text: string | undefined): PasswordRecord | undefined {
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw corrupt(file, 'it is not JSON', error);
  }
  const parsed = recordSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw corrupt(file, issue === undefined ? 'unexpected content' : `${issue.path.join('.') || 'record'}: ${issue.message}`, parsed.error);
  }
  return parsed.data;
}

/** The unlock session if it is valid for `record` at `now`; a damaged or foreign session counts as none. */
async function readValidSession(home: string, record: PasswordRecord, now: Date): Promise<UnlockSession | undefined> {
  const text = await readSecureFile(unlockSessionPath(home), { maxBytes: 16 * 1024 });
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return undefined;
  }
  const parsed = sessionSchema.safeParse(json);
  if (!parsed.success) return undefined;
  const session = parsed.data;
  const created = Date.parse(session.created_at);
  const expires = Date.parse(session.expires_at);
  const valid =
    session.uid === (process.getuid?.() ?? null) &&
    session.password_id === passwordId(record) &&
    expires - created <= MAX_UNLOCK_TTL_MS &&
    // A session made "in the future" means the clock went back; do not trust its window.
    created <= now.getTime() + 60_000 &&
    now.getTime() < expires;
  return valid ? session : undefined;
}

function serialize(record: PasswordRecord): string {
  return `${JSON.stringify(record, null, 2)}\n`;
}

function clock(options: Pick<MachinePasswordOptions, 'now'>): () => Date {
  return options.now ?? (() => new Date());
}

function notSet(): CmdopError {
  return new CmdopError('not_found', 'no machine password is set', { hint: 'Set one with: cmdop password set' });
}

function corrupt(file: string, what: string, cause: unknown): CmdopError {
  return new CmdopError('config', `${file} is not a valid machine-password file (${what})`, {
    cause,
    hint: `Restore it from a backup. Removing it removes the machine password: rm ${file}`,
    details: { path: file },
  });
}
