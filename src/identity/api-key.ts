/**
 * Workspace API keys (issue 4 §1): a CI runner or a user's machine calls hosts with one as its
 * bearer credential and is the principal `key:<name>`.
 *
 * A key reads `cmdop-key.<payload>.<secret>`: the payload is base64url JSON
 * `{v:1,id,name,fp,exp?,ws?,ch?,ca?}` (`fp` is the workspace CA fingerprint, so the client can
 * verify the hosts it calls without any other setup; `ws`, `ch` and `ca` name the workspace, its
 * CA host and where the CA host listens, so a machine outside the workspace can find the hosts),
 * the secret 32 random bytes in base64url. The CA host keeps only `CMDOP_HOME/api-keys.json`
 * (0600), whose records hold the SHA-256 of the payload segment, a `.`, and the secret bytes: the
 * secret is bound to the payload it was issued with, so a key whose name, fingerprint, expiry or
 * addresses were changed is as unknown as a forged one. Hosts that received a copy of the records
 * verify keys with {@link verifyApiKeyWith}, without the file.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { CmdopError } from '../errors.js';
import { checkAddress, checkHostName, createCredentialFile, CREDENTIAL_ID, describeCredential, hashedRecordFields, issueCredential, matchCredential, payloadFields, presentCredential, splitCredential } from './hashed-credentials.js';
import type { CredentialFormat, CredentialInfo, CredentialRefusals, CredentialState, HashedCredentialRecord } from './hashed-credentials.js';
import { loadCa, tlsDir } from './workspace-ca.js';

export { LAST_USED_RESOLUTION_MS } from './hashed-credentials.js';

/** Every API key starts with this, then a `.`. */
export const API_KEY_PREFIX = 'cmdop-key';

/** The longest an API key may live: 3650 days. Without a lifetime it never expires. */
export const MAX_API_KEY_TTL_MS = 3650 * 24 * 60 * 60 * 1000;

const KEY_NAME = /^[a-z0-9._-]{1,64}$/;
/** The workspace names `cmdop workspace init` accepts (workspace-ca.ts). */
const WORKSPACE_NAME = /^[\p{L}\p{N}](?:[\p{L}\p{N} ._-]{0,62}[\p{L}\p{N}])?$/u;

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
  /** The workspace name, when the key carries it. */
  readonly workspace?: string | undefined;
  /** The CA host's name, when the key carries it: the host to ask first. */
  readonly caHost?: string | undefined;
  /** Where the CA host listens (`HOST:PORT`), when the key carries it. */
  readonly caAddress?: string | undefined;
}

/** What the CA host stores per key: no secret, only its hash. */
export interface ApiKeyRecord extends HashedCredentialRecord {
  readonly name: string;
}

/** Whether a key is usable at the time of listing. */
export type ApiKeyState = CredentialState;

/** A key as `keys list` shows it: everything but the hash. */
export type ApiKeyInfo = CredentialInfo<ApiKeyRecord>;

/** Options for {@link createApiKey}. */
export interface CreateApiKeyOptions {
  /** 1 to 64 characters of `a-z 0-9 . _ -`, unique among keys not revoked. */
  readonly name: string;
  /** How long the key works, in milliseconds (at most {@link MAX_API_KEY_TTL_MS}); default: no expiry. */
  readonly ttlMs?: number | undefined;
  /** The workspace name the key carries (as `workspace.json` says it); default: none. */
  readonly workspace?: string | undefined;
  /** The CA host's name the key carries (one lower-case DNS label); default: none. */
  readonly caHost?: string | undefined;
  /** The CA host's `HOST:PORT` the key carries; default: none. */
  readonly caAddress?: string | undefined;
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
  /** The workspace name, CA host name and CA address the key carries; null when it does not. */
  readonly workspace: string | null;
  readonly ca_host: string | null;
  readonly ca_address: string | null;
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
    id: z.string().regex(CREDENTIAL_ID),
    name: z.string().regex(KEY_NAME),
    fp: payloadFields.fingerprint,
    exp: z.number().int().positive().optional(),
    ws: z.string().regex(WORKSPACE_NAME).optional(),
    ch: payloadFields.hostName.optional(),
    ca: payloadFields.address.optional(),
  })
  .strict();

const keyFormat: CredentialFormat<z.infer<typeof payloadSchema>> = { prefix: API_KEY_PREFIX, payload: payloadSchema, noun: 'API key', issuedBy: 'cmdop workspace keys create' };

// `name` second, so the file and `keys list --json` read id, name, then the rest.
const keyFile = createCredentialFile<ApiKeyRecord>(keyFormat, {
  listKey: 'keys',
  record: z.object({ id: hashedRecordFields.id, name: z.string().regex(KEY_NAME) }).merge(z.object(hashedRecordFields)).strict(),
});

const refusals: CredentialRefusals<ApiKeyRecord> = {
  unknown: () =>
    new CmdopError('denied', 'the API key is not one this workspace issued', {
      hint: 'Check that the whole key was copied, or create a new one with `cmdop workspace keys create` on the CA host.',
    }),
  revoked: (record) =>
    new CmdopError('denied', `the API key "${record.name}" was revoked at ${record.revoked_at ?? 'an unknown time'}`, {
      hint: 'Create a new one with `cmdop workspace keys create` on the CA host.',
      details: { id: record.id, name: record.name },
    }),
  expired: (record) =>
    new CmdopError('denied', `the API key "${record.name}" expired at ${record.expires_at ?? 'an unknown time'}`, {
      hint: 'Create a new one with `cmdop workspace keys create` on the CA host.',
      details: { id: record.id, name: record.name, expiresAt: record.expires_at },
    }),
};

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
 * Creates an API key on the CA host: the key carries the CA's fingerprint (and, when given, the
 * workspace name, CA host name and CA address); only its hash is stored. Refuses with
 * CmdopError('config') on a host without the CA key, and CmdopError('invalid_input') for a bad
 * name, lifetime, workspace name, host name or address, or a name already held by a key that is
 * not revoked.
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
  const locator = checkLocator(options);
  const ca = await loadCa(tlsDir(home));
  if (ca === undefined) {
    throw new CmdopError('config', 'this host does not hold the workspace CA, so it cannot create API keys', {
      hint: 'Run `cmdop workspace keys create` on the CA host (where `cmdop workspace init` ran).',
    });
  }
  const now = options.now ?? new Date();
  const expiresAt = ttlMs === undefined ? undefined : new Date(now.getTime() + ttlMs);
  const issued = issueCredential(API_KEY_PREFIX, (id) => ({ v: 1, id, name, fp: ca.fingerprint, ...(expiresAt === undefined ? {} : { exp: expiresAt.getTime() }), ...locator }), now, expiresAt);
  const record: ApiKeyRecord = { ...issued.record, name };
  const path = apiKeysPath(home);
  await keyFile.update(path, (records) => {
    // Checked under the lock, so two concurrent creates of one name cannot both land.
    const holder = records.find((each) => each.name === name && each.revoked_at === null);
    if (holder !== undefined) {
      throw new CmdopError('invalid_input', `an API key named "${name}" already exists (created ${holder.created_at})`, {
        hint: `Pick another name, or revoke the old key first with \`cmdop workspace keys revoke ${name}\`.`,
        details: { name, id: holder.id },
      });
    }
    return [...records, record];
  });
  return {
    key: issued.token,
    id: record.id,
    name,
    expires_at: record.expires_at,
    ca_fingerprint: ca.fingerprint,
    workspace: locator.ws ?? null,
    ca_host: locator.ch ?? null,
    ca_address: locator.ca ?? null,
  };
}

/** Lists the keys of this CA host, oldest first, with their state at `now`; never a key or its hash. */
export async function listApiKeys(home: string, now: Date = new Date()): Promise<readonly ApiKeyInfo[]> {
  return (await readApiKeyRecords(home)).map((record) => describeCredential(record, now));
}

/**
 * Revokes the key named `name` (the one not yet revoked): from then on it is refused.
 * CmdopError('not_found') when no such key is active.
 */
export async function revokeApiKey(home: string, name: string, now: Date = new Date()): Promise<ApiKeyInfo> {
  validateApiKeyName(name);
  const [revoked] = await keyFile.revoke(apiKeysPath(home), now, (records) => {
    const record = records.find((each) => each.name === name && each.revoked_at === null);
    if (record === undefined) {
      const earlier = records.filter((each) => each.name === name).at(-1);
      throw new CmdopError('not_found', earlier === undefined ? `there is no API key named "${name}"` : `the API key "${name}" was already revoked at ${earlier.revoked_at ?? 'an unknown time'}`, {
        hint: 'See the keys with `cmdop workspace keys list`.',
        details: { name },
      });
    }
    return [record];
  });
  if (revoked === undefined) throw new CmdopError('internal', `the revoked API key "${name}" is missing from ${apiKeysPath(home)}`);
  return describeCredential(revoked, now);
}

/**
 * The key records of this CA host (hashes only, never a key), for the daemon to ship to the
 * hosts that verify keys with {@link verifyApiKeyWith}; none when the file does not exist.
 */
export async function readApiKeyRecords(home: string): Promise<readonly ApiKeyRecord[]> {
  return keyFile.read(apiKeysPath(home));
}

/**
 * Parses key records received from the CA host: a JSON array of {@link ApiKeyRecord}s, as
 * {@link readApiKeyRecords} returns them. A bad shape is CmdopError('invalid_input').
 */
export function parseApiKeyRecords(json: unknown): readonly ApiKeyRecord[] {
  return keyFile.parseRecords(json);
}

/**
 * Reads a key's claims (name, CA fingerprint, expiry, and the workspace, CA host and CA address
 * when it carries them) without verifying it, for the client side; a malformed key is
 * CmdopError('invalid_input'), whose message never quotes the key.
 */
export function parseApiKey(key: string): ApiKeyClaims {
  const { id, name, fp, exp, ws, ch, ca } = splitCredential(key, keyFormat).fields;
  return {
    version: 1,
    id,
    name,
    caFingerprint: fp,
    ...(exp === undefined ? {} : { expiresAt: new Date(exp) }),
    ...(ws === undefined ? {} : { workspace: ws }),
    ...(ch === undefined ? {} : { caHost: ch }),
    ...(ca === undefined ? {} : { caAddress: ca }),
  };
}

/**
 * Verifies a key against `records` (the CA host's, or a copy of them): it must have been issued
 * by them, match its secret (compared in constant time), be unrevoked and unexpired at `now`.
 * Pure and synchronous, for the per-call path. Every refusal is CmdopError('denied') and never
 * quotes the key.
 */
export function verifyApiKeyWith(records: readonly ApiKeyRecord[], key: string, now: Date): VerifiedApiKey {
  return verified(matchCredential(records, presentCredential(key, keyFormat), now, refusals));
}

/**
 * Verifies a key presented to this CA host as {@link verifyApiKeyWith} does, against the key
 * file. Records `last_used_at`, writing the file at most once a minute per key.
 */
export async function verifyApiKey(home: string, key: string, now: Date = new Date()): Promise<VerifiedApiKey> {
  const presented = presentCredential(key, keyFormat);
  const path = apiKeysPath(home);
  const record = matchCredential(await keyFile.read(path), presented, now, refusals);
  await keyFile.touchLastUsed(path, record, now);
  return verified(record);
}

function verified(record: ApiKeyRecord): VerifiedApiKey {
  return { id: record.id, name: record.name, principal: `key:${record.name}` };
}

/** Checks the optional workspace name, CA host name and CA address, as the payload carries them. */
function checkLocator(options: CreateApiKeyOptions): { ws?: string; ch?: string; ca?: string } {
  const { workspace, caHost, caAddress } = options;
  if (workspace !== undefined && !WORKSPACE_NAME.test(workspace)) {
    throw new CmdopError('invalid_input', 'an API key carries a workspace name of 1 to 64 letters, digits, spaces, ".", "_" or "-"', {
      hint: 'Pass the workspace name as `cmdop workspace init` made it (workspace.json).',
    });
  }
  if (caHost !== undefined) checkHostName(caHost, "Pass the CA host's name as workspace.json says it.");
  if (caAddress !== undefined) checkAddress(caAddress);
  return { ...(workspace === undefined ? {} : { ws: workspace }), ...(caHost === undefined ? {} : { ch: caHost }), ...(caAddress === undefined ? {} : { ca: caAddress }) };
}
