/**
 * What every credential cmdop issues with a hashed secret (API keys, share links) has in common:
 * a 0600 JSON file `{version:1,<list>:[record…]}` whose records hold only the hash binding the
 * secret to its payload (secret-token.ts), never the secret; the checks a presented token goes
 * through, in an order that reveals nothing about a record before its secret matched; revocation;
 * and `last_used_at`, written at most once a minute so that verifying rarely writes the file.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { updateStateFile } from '../config/file-lock.js';
import { readSecureFile } from '../config/secure-file.js';
import { createStatCache } from '../config/stat-cache.js';
import { CmdopError } from '../errors.js';
import { validateServerAddress } from './join-token.js';
import { hashTokenSecret, mintSecretToken, splitSecretToken } from './secret-token.js';

/** `last_used_at` is written at most this often per credential. */
export const LAST_USED_RESOLUTION_MS = 60 * 1000;

/** A credential id: 32 lowercase hex characters, not secret. */
export const CREDENTIAL_ID = /^[0-9a-f]{32}$/;

/** The longest `HOST:PORT` a credential's payload carries. */
export const MAX_ADDRESS_LENGTH = 300;

/** An ISO 8601 time, as the records store them. */
export const isoTime = z.string().datetime();

/** Payload fields credentials share: a host name as certificates store it, a `HOST:PORT`, a CA fingerprint. */
export const payloadFields = {
  hostName: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/),
  address: z.string().max(MAX_ADDRESS_LENGTH).refine((text) => isServerAddress(text)),
  fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
};

/** Returns `name` if it is a host name as certificates store it, else throws CmdopError('invalid_input') with `hint`. */
export function checkHostName(name: string, hint: string): string {
  if (!payloadFields.hostName.safeParse(name).success) {
    throw new CmdopError('invalid_input', `${JSON.stringify(name.slice(0, 80))} is not a host name: use 1 to 63 lower-case letters, digits and inner hyphens`, { hint });
  }
  return name;
}

/** Returns `address` if it is a `HOST:PORT` a token may carry, else throws CmdopError('invalid_input'). */
export function checkAddress(address: string): string {
  if (!isServerAddress(address)) {
    throw new CmdopError('invalid_input', `${JSON.stringify(address.slice(0, 100))} is not a HOST:PORT address of at most ${MAX_ADDRESS_LENGTH} characters`, {
      hint: 'Give the address as host:port, for example 10.0.0.5:8470 or [fd00::5]:8470.',
    });
  }
  return address;
}

/** True for a `HOST:PORT` (IPv6 in brackets) of at most {@link MAX_ADDRESS_LENGTH} characters, without surrounding space. */
export function isServerAddress(text: string): boolean {
  if (text.length > MAX_ADDRESS_LENGTH) return false;
  try {
    return validateServerAddress(text) === text;
  } catch {
    return false;
  }
}

/** The fields every stored credential has; each kind adds its own (a key's name, a share's host). */
export interface HashedCredentialRecord {
  readonly id: string;
  /** SHA-256 over the payload segment, `.` and the secret, 64 lowercase hex characters. */
  readonly secretHash: string;
  /** ISO 8601 times; null when not set. */
  readonly created_at: string;
  readonly expires_at: string | null;
  readonly last_used_at: string | null;
  readonly revoked_at: string | null;
}

/** Whether a credential is usable at a given time. */
export type CredentialState = 'active' | 'expired' | 'revoked';

/** A record as a list shows it: everything but the hash, with its state. */
export type CredentialInfo<R extends HashedCredentialRecord> = Omit<R, 'secretHash'> & { readonly state: CredentialState };

/** The schema fields of {@link HashedCredentialRecord}, for a kind's record schema to merge with its own. */
export const hashedRecordFields = {
  id: z.string().regex(CREDENTIAL_ID),
  secretHash: z.string().regex(/^[0-9a-f]{64}$/),
  created_at: isoTime,
  expires_at: isoTime.nullable(),
  last_used_at: isoTime.nullable(),
  revoked_at: isoTime.nullable(),
};

/** How one kind of credential reads: its prefix, its payload, and what users call it. */
export interface CredentialFormat<P extends { readonly id: string }> {
  /** The token's first part, such as `cmdop-key`. */
  readonly prefix: string;
  /** The payload's fields, strict. */
  readonly payload: z.ZodType<P, z.ZodTypeDef, unknown>;
  /** What it is called, after "a cmdop": "API key". */
  readonly noun: string;
  /** The command that issues one, for hints: "cmdop workspace keys create". */
  readonly issuedBy: string;
}

/** Options for {@link createCredentialFile}. */
export interface CredentialFileOptions<R extends HashedCredentialRecord> {
  /** The key of the record list in the file, such as `keys`. */
  readonly listKey: string;
  /** One record: {@link hashedRecordFields} and the kind's own fields, strict. */
  readonly record: z.ZodType<R, z.ZodTypeDef, unknown>;
}

/** Reading and changing one kind of credential file; every path given is such a file. */
export interface CredentialFile<R extends HashedCredentialRecord> {
  /** Parses a record list (a JSON array) received from elsewhere; CmdopError('invalid_input') on a bad shape. */
  readonly parseRecords: (json: unknown) => readonly R[];
  /**
   * The records of `path`, none when it does not exist; a reading is reused while the file is the
   * same file, unchanged (verification reads it on every call).
   */
  readonly read: (path: string) => Promise<readonly R[]>;
  /** Under the file's lock, replaces the records by what `change` returns (undefined: no change). */
  readonly update: (path: string, change: (records: readonly R[]) => readonly R[] | undefined) => Promise<void>;
  /**
   * Under the lock, marks revoked at `now` the records `select` picks (it throws to refuse) and
   * returns them as revoked.
   */
  readonly revoke: (path: string, now: Date, select: (records: readonly R[]) => readonly R[]) => Promise<readonly R[]>;
  /** Records that `record` was used at `now`, unless it was within the last minute; a busy lock is no error. */
  readonly touchLastUsed: (path: string, record: R, now: Date) => Promise<void>;
}

/** Makes the reader and writer of the file of one kind of credential (`format` words its errors). */
export function createCredentialFile<R extends HashedCredentialRecord>(format: Pick<CredentialFormat<{ id: string }>, 'noun' | 'issuedBy'>, options: CredentialFileOptions<R>): CredentialFile<R> {
  const kind = `${format.noun} list`;
  const list = z.array(options.record);
  const fileSchema = z.object({ version: z.literal(1), [options.listKey]: list }).strict();

  const parseText = (path: string, text: string | undefined): readonly R[] => {
    if (text === undefined) return [];
    const damaged = (cause: unknown): CmdopError =>
      new CmdopError('config', `${path} is damaged: it is not a cmdop ${kind}`, {
        cause,
        hint: `Restore it from a backup, or move it away; every ${format.noun} in it is then void, and new ones can be made with \`${format.issuedBy}\`.`,
        details: { path },
      });
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (error) {
      throw damaged(error);
    }
    const parsed = fileSchema.safeParse(json);
    if (!parsed.success) throw damaged(parsed.error);
    const records = parsed.data[options.listKey];
    return freezeAll(Array.isArray(records) ? records : []);
  };
  const serialize = (records: readonly R[]): string => `${JSON.stringify({ version: 1, [options.listKey]: records }, null, 2)}\n`;
  // Verification reads the file on every call: each version of it is parsed once.
  const reader = createStatCache(async (path) => parseText(path, await readSecureFile(path)));
  const update: CredentialFile<R>['update'] = async (path, change) => {
    await updateStateFile(path, (current) => {
      const next = change(parseText(path, current));
      return next === undefined ? undefined : serialize(next);
    });
  };

  return {
    parseRecords: (json) => {
      const parsed = list.safeParse(json);
      if (!parsed.success) {
        throw new CmdopError('invalid_input', `the records received are not a cmdop ${kind}: ${parsed.error.issues[0]?.message ?? 'bad shape'}`, {
          cause: parsed.error,
          hint: 'Send the records as the issuing host stores them (a JSON array).',
        });
      }
      return freezeAll(parsed.data);
    },
    read: (path) => reader.read(path),
    update,
    revoke: async (path, now, select) => {
      const at = now.toISOString();
      let revoked: readonly R[] = [];
      await update(path, (records) => {
        const ids = new Set(select(records).map((record) => record.id));
        const next = records.map((record) => (ids.has(record.id) ? { ...record, revoked_at: at } : record));
        revoked = next.filter((record) => ids.has(record.id));
        return next;
      });
      return revoked;
    },
    touchLastUsed: async (path, record, now) => {
      if (!needsTouch(record, now)) return;
      try {
        await update(path, (records) => {
          const current = records.find((each) => each.id === record.id);
          // Re-checked under the lock: a concurrent verification may have written it already.
          if (current === undefined || current.revoked_at !== null || !needsTouch(current, now)) return undefined;
          return records.map((each) => (each === current ? { ...each, last_used_at: now.toISOString() } : each));
        });
      } catch (error) {
        // last_used_at is bookkeeping: a busy lock must not turn a valid credential away.
        if (!(error instanceof CmdopError) || error.code !== 'unavailable') throw error;
      }
    },
  };
}

/** The state of `record` at `now`. */
export function credentialState(record: HashedCredentialRecord, now: Date): CredentialState {
  if (record.revoked_at !== null) return 'revoked';
  if (record.expires_at !== null && now.getTime() >= Date.parse(record.expires_at)) return 'expired';
  return 'active';
}

/** `record` without its hash, with its state at `now`: what lists and revocations show. */
export function describeCredential<R extends HashedCredentialRecord>(record: R, now: Date): CredentialInfo<R> {
  // eslint-disable-next-line @typescript-eslint/no-unused-vars -- the hash is what must never be shown
  const { secretHash, ...shown } = record;
  return { ...shown, state: credentialState(record, now) };
}

/** A freshly issued credential: the token for the holder, the record (hash only) for the issuer. */
export interface IssuedCredential {
  /** The whole token, secret included. Show it once; never log or store it. */
  readonly token: string;
  readonly record: HashedCredentialRecord;
}

/** Issues a credential: a fresh id, the token around `payload(id)`, and the record to store. */
export function issueCredential(prefix: string, payload: (id: string) => unknown, now: Date, expiresAt: Date | undefined): IssuedCredential {
  const id = randomBytes(16).toString('hex');
  const { token, secretHash } = mintSecretToken(prefix, payload(id));
  return {
    token,
    record: { id, secretHash, created_at: now.toISOString(), expires_at: expiresAt?.toISOString() ?? null, last_used_at: null, revoked_at: null },
  };
}

/** A presented token taken apart: the id its payload claims, the payload as sent, and the secret. */
export interface PresentedCredential {
  readonly id: string;
  readonly payload: string;
  readonly secret: Buffer;
}

/** How a kind words each refusal of {@link matchCredential}; each is CmdopError('denied'). */
export interface CredentialRefusals<R extends HashedCredentialRecord> {
  /** No record has the id, or the secret does not match it. */
  readonly unknown: () => CmdopError;
  readonly revoked: (record: R) => CmdopError;
  readonly expired: (record: R) => CmdopError;
}

/**
 * The record a presented credential proves, if usable at `now`: issued by these records, its
 * secret matching (compared in constant time), unrevoked and unexpired; else the refusal.
 */
export function matchCredential<R extends HashedCredentialRecord>(records: readonly R[], presented: PresentedCredential, now: Date, refusals: CredentialRefusals<R>): R {
  const record = records.find((each) => each.id === presented.id);
  // The secret is checked before anything else is revealed about the record's state.
  const presentedHash = Buffer.from(hashTokenSecret(presented.payload, presented.secret), 'hex');
  if (record === undefined || !timingSafeEqual(Buffer.from(record.secretHash, 'hex'), presentedHash)) throw refusals.unknown();
  const state = credentialState(record, now);
  if (state === 'revoked') throw refusals.revoked(record);
  if (state === 'expired') throw refusals.expired(record);
  return record;
}

/** A token taken apart: the fields of its payload, and what {@link matchCredential} needs. */
export interface SplitCredential<P> extends PresentedCredential {
  readonly fields: P;
}

/**
 * Takes a token of `format` apart, checking its shape only; a malformed one is
 * CmdopError('invalid_input'), whose message never quotes the token.
 */
export function splitCredential<P extends { readonly id: string }>(token: string, format: CredentialFormat<P>): SplitCredential<P> {
  const malformed = (what: string): CmdopError =>
    new CmdopError('invalid_input', `this is not a cmdop ${format.noun}: ${what}`, {
      hint: `Copy the whole ${format.noun} printed by \`${format.issuedBy}\` (it starts with "${format.prefix}.").`,
    });
  const { payload, json, secret } = splitSecretToken(token, format.prefix, malformed);
  const parsed = format.payload.safeParse(json);
  if (!parsed.success) throw malformed(`its payload does not have the fields of a version 1 ${format.noun}`);
  return { id: parsed.data.id, fields: parsed.data, payload, secret };
}

/**
 * Takes a presented token apart for verification, as {@link splitCredential} does; a malformed
 * one is refused with CmdopError('denied') (and `details`), never quoting it.
 */
export function presentCredential<P extends { readonly id: string }>(token: string, format: CredentialFormat<P>, details?: Readonly<Record<string, unknown>>): SplitCredential<P> {
  try {
    return splitCredential(token, format);
  } catch (error) {
    const parsed = CmdopError.from(error);
    throw new CmdopError('denied', parsed.message, { cause: error, ...(parsed.hint === undefined ? {} : { hint: parsed.hint }), ...(details === undefined ? {} : { details }) });
  }
}

function needsTouch(record: HashedCredentialRecord, now: Date): boolean {
  return record.last_used_at === null || Math.abs(now.getTime() - Date.parse(record.last_used_at)) >= LAST_USED_RESOLUTION_MS;
}

function freezeAll<R extends HashedCredentialRecord>(records: readonly R[]): readonly R[] {
  return Object.freeze(records.map((record) => Object.freeze(record)));
}
