/**
 * Workspace API keys (issue 4 §1): a CI runner or a user's machine calls hosts with one as its
 * bearer credential and is the principal `key:<name>`.
 *
 * A key reads `cmdop-key.<payload>.<secret>`: the payload is base64url JSON `{v:1,id,name,fp,exp?}`
 * (`fp` is the workspace CA fingerprint, so the client can verify the hosts it calls without any
 * other setup), the secret 32 random bytes in base64url. The CA host keeps only
 * `CMDOP_HOME/api-keys.json` (0600), whose records hold the SHA-256 of the payload segment, a `.`,
 * and the secret bytes: the secret is bound to the payload it was issued with, so a key whose
 * name, fingerprint or expiry was changed is as unknown as a forged one.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { CmdopError } from '../errors.js';
import { updateStateFile } from '../config/file-lock.js';
import { readSecureFile } from '../config/secure-file.js';
import { hashTokenSecret, mintSecretToken, splitSecretToken } from './secret-token.js';
import { loadCa, tlsDir } from './workspace-ca.js';

/** Every API key starts with this, then a `.`. */
export const API_KEY_PREFIX = 'cmdop-key';

/** The longest an API key may live: 3650 days. Without a lifetime it never expires. */
export const MAX_API_KEY_TTL_MS = 3650 * 24 * 60 * 60 * 1000;

/** `last_used_at` is written at most this often per key, so verifying a key rarely writes the file. */
export const LAST_USED_RESOLUTION_MS = 60 * 1000;

const KEY_ID = /^[0-9a-f]{32}$/;
const SECRET_HASH = /^[0-9a-f]{64}$/;
const KEY_NAME = /^[a-z0-9._-]{1,64}$/;

/** What a client learns from a key without verifying it. */
export interface ApiKeyClaims {
  readonly version: 1;
  /** The key id (32 lowercase hex characters); not secret. */
  readonly id: string;
  /** The key name; the key acts as the principal `key:<name>`. */
  readonly name: string;
  /** The workspace CA fingerprint hosts must present (64 lowercase hex characters). */
  readonly caFingerprint: string;
  /** When the key stops working; undefined when it does not expire. */
  readonly expiresAt?: Date | undefined;
}

/** What the CA host stores per key: no secret, only its hash. */
export interface ApiKeyRecord {
  readonly id: string;
  readonly name: string;
  /** SHA-256 over the payload segment, `.` and the secret, 64 lowercase hex characters. */
  readonly secretHash: string;
  /** ISO 8601 times; null when not set. */
  readonly created_at: string;
  readonly expires_at: string | null;
  readonly last_used_at: string | null;
  readonly revoked_at: string | null;
}

/** Whether a key is usable at the time of listing. */
export type ApiKeyState = 'active' | 'expired' | 'revoked';

/** A key as `keys list` shows it: everything but the hash. */
export interface ApiKeyInfo {
  readonly id: string;
  readonly name: string;
  readonly created_at: string;
  readonly expires_at: string | null;
  readonly last_used_at: string | null;
  readonly revoked_at: string | null;
  readonly state: ApiKeyState;
}

/** Options for {@link createApiKey}. */
export interface CreateApiKeyOptions {
  /** 1 to 64 characters of `a-z 0-9 . _ -`, unique among keys not revoked. */
  readonly name: string;
  /** How long the key works, in milliseconds (at most {@link MAX_API_KEY_TTL_MS}); default: no expiry. */
  readonly ttlMs?: number | undefined;
  /** The creation time (default: the current time). */
  readonly now?: Date;
}

/** A freshly created key: `key` is shown to the operator once and never stored. */
export interface CreatedApiKey {
  /** The whole key, secret included. Show it once; never log or store it. */
  readonly key: string;
  readonly id: string;
  readonly name: string;
  /** ISO 8601 expiry, or null when the key does not expire. */
  readonly expires_at: string | null;
  /** The workspace CA fingerprint the key carries. */
  readonly ca_fingerprint: string;
}

/** The outcome of {@link verifyApiKey}: who the caller is. */
export interface VerifiedApiKey {
  readonly id: string;
  readonly name: string;
  /** `key:<name>`, the principal the gate and the audit log see. */
  readonly principal: `key:${string}`;
}

const payloadSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(KEY_ID),
    name: z.string().regex(KEY_NAME),
    fp: z.string().regex(/^[0-9a-f]{64}$/),
    exp: z.number().int().positive().optional(),
  })
  .strict();

const isoTime = z.string().datetime();

const recordSchema = z
  .object({
    id: z.string().regex(KEY_ID),
    name: z.string().regex(KEY_NAME),
    secretHash: z.string().regex(SECRET_HASH),
    created_at: isoTime,
    expires_at: isoTime.nullable(),
    last_used_at: isoTime.nullable(),
    revoked_at: isoTime.nullable(),
  })
  .strict();

const fileSchema = z.object({ version: z.literal(1), keys: z.array(recordSchema) }).strict();

/** The API-key store of a cmdop home: `CMDOP_HOME/api-keys.json` (mode 0600). */
export function apiKeysPath(home: string): string {
  return join(home, 'api-keys.json');
}

/** Checks an API key name (1 to 64 characters of `a-z 0-9 . _ -`) and returns it. */
export function validateApiKeyName(name: string): string {
  if (!KEY_NAME.test(name)) {
    throw new CmdopError('invalid_input', `${JSON.stringify(name.slice(0, 100))} is not a valid API key name: use 1 to 64 characters of a-z, 0-9, ".", "_" and "-"`, {
      hint: 'For example: --name ci-deploy',
    });
  }
  return name;
}

/**
 * Creates an API key on the CA host: the key carries the CA's fingerprint; only its hash is
 * stored. Refuses with CmdopError('config') on a host without the CA key, and
 * CmdopError('invalid_input') for a bad name or lifetime or a name already held by a key that
 * is not revoked.
 */
export async function createApiKey(home: string, options: CreateApiKeyOptions): Promise<CreatedApiKey> {
  const name = validateApiKeyName(options.name);
  const { ttlMs } = options;
  if (ttlMs !== undefined && (!Number.isInteger(ttlMs) || ttlMs <= 0 || ttlMs > MAX_API_KEY_TTL_MS)) {
    throw new CmdopError('invalid_input', `an API key's lifetime must be from 1 ms to ${MAX_API_KEY_TTL_MS / 86_400_000} days`, {
      hint: 'For example: --ttl 90d, or leave --ttl out for a key that does not expire.',
      details: { ttlMs },
    });
  }
  const ca = await loadCa(tlsDir(home));
  if (ca === undefined) {
    throw new CmdopError('config', 'this host does not hold the workspace CA, so it cannot create API keys', {
      hint: 'Run `cmdop workspace keys create` on the CA host (where `cmdop workspace init` ran).',
    });
  }
  const now = options.now ?? new Date();
  const expiresAt = ttlMs === undefined ? undefined : new Date(now.getTime() + ttlMs);
  const id = randomBytes(16).toString('hex');
  const { token: key, secretHash } = mintSecretToken(API_KEY_PREFIX, { v: 1, id, name, fp: ca.fingerprint, ...(expiresAt === undefined ? {} : { exp: expiresAt.getTime() }) });
  const record: ApiKeyRecord = {
    id,
    name,
    secretHash,
    created_at: now.toISOString(),
    expires_at: expiresAt?.toISOString() ?? null,
    last_used_at: null,
    revoked_at: null,
  };
  const path = apiKeysPath(home);
  await updateStateFile(path, (current) => {
    const records = parseStoreFile(path, current);
    // Checked under the lock, so two concurrent creates of one name cannot both land.
    const holder = records.find((each) => each.name === name && each.revoked_at === null);
    if (holder !== undefined) {
      throw new CmdopError('invalid_input', `an API key named "${name}" already exists (created ${holder.created_at})`, {
        hint: `Pick another name, or revoke the old key first with \`cmdop workspace keys revoke ${name}\`.`,
        details: { name, id: holder.id },
      });
    }
    return serializeStore([...records, record]);
  });
  return { key, id, name, expires_at: record.expires_at, ca_fingerprint: ca.fingerprint };
}

/** Lists the keys of this CA host, oldest first, with their state at `now`; never a key or its hash. */
export async function listApiKeys(home: string, now: Date = new Date()): Promise<readonly ApiKeyInfo[]> {
  const path = apiKeysPath(home);
  const records = parseStoreFile(path, await readSecureFile(path));
  return records.map((record) => ({
    id: record.id,
    name: record.name,
    created_at: record.created_at,
    expires_at: record.expires_at,
    last_used_at: record.last_used_at,
    revoked_at: record.revoked_at,
    state: stateOf(record, now),
  }));
}

/**
 * Revokes the key named `name` (the one not yet revoked): from then on it is refused.
 * CmdopError('not_found') when no such key is active.
 */
export async function revokeApiKey(home: string, name: string, now: Date = new Date()): Promise<ApiKeyInfo> {
  validateApiKeyName(name);
  const path = apiKeysPath(home);
  const at = now.toISOString();
  let revokedId: string | undefined;
  await updateStateFile(path, (current) => {
    const records = parseStoreFile(path, current);
    const record = records.find((each) => each.name === name && each.revoked_at === null);
    if (record === undefined) {
      const earlier = records.filter((each) => each.name === name).at(-1);
      throw new CmdopError('not_found', earlier === undefined ? `there is no API key named "${name}"` : `the API key "${name}" was already revoked at ${earlier.revoked_at ?? 'an unknown time'}`, {
        hint: 'See the keys with `cmdop workspace keys list`.',
        details: { name },
      });
    }
    revokedId = record.id;
    return serializeStore(records.map((each) => (each.id === record.id ? { ...each, revoked_at: at } : each)));
  });
  const revoked = (await listApiKeys(home, now)).find((each) => each.id === revokedId);
  if (revoked === undefined) throw new CmdopError('internal', `the revoked API key "${name}" is missing from ${path}`);
  return revoked;
}

/**
 * Reads a key's claims (name, CA fingerprint, expiry) without verifying it, for the client side;
 * a malformed key is CmdopError('invalid_input'), whose message never quotes the key.
 */
export function parseApiKey(key: string): ApiKeyClaims {
  return splitKey(key).claims;
}

/**
 * Verifies a key presented to this CA host: it must have been issued by this store, match its
 * secret (compared in constant time), be unrevoked and unexpired at `now`. Every refusal is
 * CmdopError('denied') and never quotes the key. Records `last_used_at`, writing the file at
 * most once a minute per key.
 */
export async function verifyApiKey(home: string, key: string, now: Date = new Date()): Promise<VerifiedApiKey> {
  let split: SplitKey;
  try {
    split = splitKey(key);
  } catch (error) {
    const hint = error instanceof CmdopError ? error.hint : undefined;
    throw new CmdopError('denied', error instanceof CmdopError ? error.message : 'the credential is not a cmdop API key', { cause: error, ...(hint === undefined ? {} : { hint }) });
  }
  const { claims, payload, secret } = split;
  const presentedHash = Buffer.from(hashTokenSecret(payload, secret), 'hex');
  const path = apiKeysPath(home);
  const record = parseStoreFile(path, await readSecureFile(path)).find((each) => each.id === claims.id);
  // The secret is checked before anything else is revealed about the key's state.
  if (record === undefined || !timingSafeEqual(Buffer.from(record.secretHash, 'hex'), presentedHash)) {
    throw new CmdopError('denied', 'the API key is not one this workspace issued', {
      hint: 'Check that the whole key was copied, or create a new one with `cmdop workspace keys create` on the CA host.',
    });
  }
  if (record.revoked_at !== null) {
    throw new CmdopError('denied', `the API key "${record.name}" was revoked at ${record.revoked_at}`, {
      hint: 'Create a new one with `cmdop workspace keys create` on the CA host.',
      details: { id: record.id, name: record.name },
    });
  }
  if (record.expires_at !== null && now.getTime() >= Date.parse(record.expires_at)) {
    throw new CmdopError('denied', `the API key "${record.name}" expired at ${record.expires_at}`, {
      hint: 'Create a new one with `cmdop workspace keys create` on the CA host.',
      details: { id: record.id, name: record.name, expiresAt: record.expires_at },
    });
  }
  if (needsTouch(record, now)) await touchLastUsed(path, record.id, now);
  return { id: record.id, name: record.name, principal: `key:${record.name}` };
}

function needsTouch(record: ApiKeyRecord, now: Date): boolean {
  return record.last_used_at === null || Math.abs(now.getTime() - Date.parse(record.last_used_at)) >= LAST_USED_RESOLUTION_MS;
}

async function touchLastUsed(path: string, id: string, now: Date): Promise<void> {
  try {
    await updateStateFile(path, (current) => {
      const records = parseStoreFile(path, current);
      const index = records.findIndex((each) => each.id === id);
      const record = records[index];
      // Re-checked under the lock: a concurrent verification may have written it already.
      if (record === undefined || record.revoked_at !== null || !needsTouch(record, now)) return undefined;
      const touched: ApiKeyRecord = { ...record, last_used_at: now.toISOString() };
      return serializeStore(records.map((each, i) => (i === index ? touched : each)));
    });
  } catch (error) {
    // last_used_at is bookkeeping: a busy lock must not turn a valid key away.
    if (!(error instanceof CmdopError) || error.code !== 'unavailable') throw error;
  }
}

function stateOf(record: ApiKeyRecord, now: Date): ApiKeyState {
  if (record.revoked_at !== null) return 'revoked';
  if (record.expires_at !== null && now.getTime() >= Date.parse(record.expires_at)) return 'expired';
  return 'active';
}

interface SplitKey {
  readonly claims: ApiKeyClaims;
  readonly payload: string;
  readonly secret: Buffer;
}

function splitKey(key: string): SplitKey {
  const malformed = (what: string): CmdopError =>
    new CmdopError('invalid_input', `this is not a cmdop API key: ${what}`, {
      hint: 'Copy the whole key printed by `cmdop workspace keys create` (it starts with "cmdop-key.").',
    });
  const { payload, json, secret } = splitSecretToken(key, API_KEY_PREFIX, malformed);
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) throw malformed('its payload does not have the fields of a version 1 key');
  const { id, name, fp, exp } = parsed.data;
  return { claims: { version: 1, id, name, caFingerprint: fp, ...(exp === undefined ? {} : { expiresAt: new Date(exp) }) }, payload, secret };
}

function parseStoreFile(path: string, text: string | undefined): readonly ApiKeyRecord[] {
  if (text === undefined) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw damaged(path, error);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw damaged(path, parsed.error);
  return parsed.data.keys;
}

function serializeStore(records: readonly ApiKeyRecord[]): string {
  return `${JSON.stringify({ version: 1, keys: records }, null, 2)}\n`;
}

function damaged(path: string, cause: unknown): CmdopError {
  return new CmdopError('config', `${path} is damaged: it is not a cmdop API-key list`, {
    cause,
    hint: 'Restore it from a backup, or move it away; every API key is then void and can be created again with `cmdop workspace keys create`.',
    details: { path },
  });
}
