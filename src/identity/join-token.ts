/**
 * One-time join tokens (DESIGN.md §6): `cmdop workspace invite` mints one; `cmdop join` hands it
 * back to the CA host, which redeems it exactly once before signing the new host's certificate.
 *
 * A token reads `cmdop-join.<payload>.<secret>`: the payload is base64url JSON
 * `{v:1,id,fp,addr,exp}` (the CA fingerprint and the address to join through, for the joining
 * side), the secret 32 random bytes in base64url. The CA host stores only
 * `{ id, secretHash, expiresAt, used }`, where `secretHash` is the SHA-256 of the payload segment,
 * a `.`, and the secret bytes: the secret is bound to the payload it was issued with, so a token
 * whose address, fingerprint or expiry was changed is as unknown as a forged one.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { CmdopError } from '../errors.js';
import { updateStateFile } from '../config/file-lock.js';
import { readSecureFile } from '../config/secure-file.js';
import { hashTokenSecret, mintSecretToken, splitSecretToken } from './secret-token.js';
import { normalizeFingerprint } from './workspace-ca.js';

/** Every join token starts with this, then a `.`. */
export const JOIN_TOKEN_PREFIX = 'cmdop-join';

/** The longest a join token may live: 30 days (one-time invitations are meant to be short-lived). */
export const MAX_JOIN_TOKEN_TTL_MS = 30 * 24 * 60 * 60 * 1000;

/** Used and expired records are dropped from the store this long after they expire. */
const PRUNE_AFTER_MS = 7 * 24 * 60 * 60 * 1000;

const TOKEN_ID = /^[0-9a-f]{32}$/;
const SECRET_HASH = /^[0-9a-f]{64}$/;
const SERVER_ADDRESS = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9](?:[A-Za-z0-9.-]{0,252}))):([0-9]{1,5})$/;

/** What the joining side learns from a token, without redeeming it. */
export interface JoinTokenClaims {
  readonly version: 1;
  /** The token id (32 lowercase hex characters); not secret. */
  readonly id: string;
  /** The CA fingerprint the joining side must see at the server (64 lowercase hex characters). */
  readonly caFingerprint: string;
  /** The `HOST:PORT` to join through. */
  readonly serverAddress: string;
  readonly expiresAt: Date;
  /** The CA host's name, when the token carries it. */
  readonly caHostName?: string | undefined;
}

/** Options for {@link mintJoinToken}. */
export interface MintJoinTokenOptions {
  /** Fingerprint of the workspace CA (colons and upper case accepted). */
  readonly caFingerprint: string;
  /** The `HOST:PORT` (IPv6 in brackets) the new host should join through. */
  readonly serverAddress: string;
  /** The CA host's name; the joining host accepts only a server whose certificate names it. */
  readonly caHostName?: string;
  /** How long the token stays redeemable, in milliseconds (at most {@link MAX_JOIN_TOKEN_TTL_MS}). */
  readonly ttlMs: number;
  /** The minting time (default: the current time). */
  readonly now?: Date;
}

/** A freshly minted token: `token` goes to the operator once; only `record` is kept. */
export interface MintedJoinToken {
  /** The whole token, secret included. Show it once; never log or store it. */
  readonly token: string;
  readonly id: string;
  readonly expiresAt: Date;
  /** SHA-256 over the payload segment and the secret, 64 lowercase hex characters. */
  readonly secretHash: string;
  /** What the CA host stores for this token. */
  readonly record: JoinTokenRecord;
}

/** What the CA host stores per token: no secret, only its hash. */
export interface JoinTokenRecord {
  readonly id: string;
  readonly secretHash: string;
  /** ISO 8601 time after which the token is refused. */
  readonly expiresAt: string;
  readonly used: boolean;
  /** ISO 8601 time it was redeemed, once used. */
  readonly usedAt?: string;
}

/** The outcome of a successful {@link redeemJoinToken}: the token is now marked used. */
export interface RedeemedJoinToken {
  readonly id: string;
  readonly claims: JoinTokenClaims;
}

/** A JSON file of {@link JoinTokenRecord}s, changed only under its file lock. */
export interface JoinTokenStore {
  /** The file, mode 0600. */
  readonly path: string;
  /** Reads every record (an empty list when the file does not exist). */
  readonly list: () => Promise<readonly JoinTokenRecord[]>;
  /** Stores the record of a minted token, dropping records that expired more than 7 days before `now`. */
  readonly add: (minted: MintedJoinToken, now?: Date) => Promise<void>;
  /**
   * Under the lock, reads the records, lets `change` return the new list (or undefined for no
   * change), and writes it atomically; whatever `change` throws propagates and nothing is written.
   */
  readonly update: (change: (records: readonly JoinTokenRecord[]) => readonly JoinTokenRecord[] | undefined) => Promise<void>;
}

const payloadSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(TOKEN_ID),
    fp: z.string().regex(/^[0-9a-f]{64}$/),
    addr: z.string().max(300),
    exp: z.number().int().positive(),
    // The CA host's name, so the joining host talks to the CA host and not any member.
    ca: z.string().max(63).optional(),
  })
  .strict();

const recordSchema = z
  .object({
    id: z.string().regex(TOKEN_ID),
    secretHash: z.string().regex(SECRET_HASH),
    expiresAt: z.string().datetime(),
    used: z.boolean(),
    usedAt: z.string().datetime().optional(),
  })
  .strict();

const fileSchema = z.object({ version: z.literal(1), tokens: z.array(recordSchema) }).strict();

/** Mints a one-time join token that carries the CA fingerprint and the address to join through. */
export function mintJoinToken(options: MintJoinTokenOptions): MintedJoinToken {
  const caFingerprint = normalizeFingerprint(options.caFingerprint);
  const serverAddress = validateServerAddress(options.serverAddress);
  if (!Number.isInteger(options.ttlMs) || options.ttlMs <= 0 || options.ttlMs > MAX_JOIN_TOKEN_TTL_MS) {
    throw new CmdopError('invalid_input', `a join token's lifetime must be from 1 ms to ${MAX_JOIN_TOKEN_TTL_MS / 86_400_000} days`, {
      hint: 'For example: cmdop workspace invite --ttl 30m',
      details: { ttlMs: options.ttlMs },
    });
  }
  const now = options.now ?? new Date();
  const expiresAt = new Date(now.getTime() + options.ttlMs);
  const id = randomBytes(16).toString('hex');
  const { token, secretHash } = mintSecretToken(JOIN_TOKEN_PREFIX, { v: 1, id, fp: caFingerprint, addr: serverAddress, exp: expiresAt.getTime(), ...(options.caHostName === undefined ? {} : { ca: options.caHostName }) });
  return {
    token,
    id,
    expiresAt,
    secretHash,
    record: { id, secretHash, expiresAt: expiresAt.toISOString(), used: false },
  };
}

/**
 * Reads a join token's claims (CA fingerprint, server address, expiry) without redeeming it;
 * a malformed token is CmdopError('invalid_input'), whose message never quotes the token.
 */
export function parseJoinToken(token: string): JoinTokenClaims {
  return splitToken(token).claims;
}

/** Checks a `HOST:PORT` address (IPv6 in brackets, port 1 to 65535) and returns it trimmed. */
export function validateServerAddress(address: string): string {
  const trimmed = address.trim();
  const match = SERVER_ADDRESS.exec(trimmed);
  const port = Number(match?.[3]);
  if (match === null || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new CmdopError('invalid_input', `${JSON.stringify(trimmed.slice(0, 100))} is not a HOST:PORT address`, {
      hint: 'Give the address as host:port, for example 10.0.0.5:7443 or [fd00::5]:7443.',
    });
  }
  return trimmed;
}

/** The join-token store of a cmdop home: `CMDOP_HOME/join-tokens.json` (mode 0600). */
export function joinTokensPath(home: string): string {
  return join(home, 'join-tokens.json');
}

/** Opens the join-token store over `path` (the file is created on the first write). */
export function createJoinTokenStore(path: string): JoinTokenStore {
  const update: JoinTokenStore['update'] = async (change) => {
    await updateStateFile(path, (current) => {
      const records = parseStoreFile(path, current);
      const next = change(records);
      return next === undefined ? undefined : serializeStore(next);
    });
  };
  return {
    path,
    list: async () => parseStoreFile(path, await readSecureFile(path)),
    add: async (minted, now = new Date()) => {
      await update((records) => [
        ...records.filter((record) => Date.parse(record.expiresAt) + PRUNE_AFTER_MS > now.getTime() && record.id !== minted.id),
        { id: minted.record.id, secretHash: minted.record.secretHash, expiresAt: minted.record.expiresAt, used: false },
      ]);
    },
    update,
  };
}

/**
 * Redeems a join token once: it must have been issued by this store, match its secret, be
 * unused and unexpired at `now`; it is marked used under the store's lock, so of two
 * redemptions of the same token exactly one succeeds. Refusals are CmdopError('denied').
 */
export async function redeemJoinToken(store: JoinTokenStore, token: string, now: Date = new Date()): Promise<RedeemedJoinToken> {
  const { claims, payload, secret } = splitToken(token);
  const presentedHash = Buffer.from(hashTokenSecret(payload, secret), 'hex');
  await store.update((records) => {
    const index = checkRecord(records, claims.id, presentedHash, now);
    const used: JoinTokenRecord = { ...(records[index] as JoinTokenRecord), used: true, usedAt: now.toISOString() };
    return records.map((each, i) => (i === index ? used : each));
  });
  return { id: claims.id, claims };
}

/**
 * Checks a join token as {@link redeemJoinToken} does, without using it up: the CA host checks
 * a token before it says anything else about the request (such as whether a name is taken).
 */
export async function checkJoinToken(store: JoinTokenStore, token: string, now: Date = new Date()): Promise<JoinTokenClaims> {
  const { claims, payload, secret } = splitToken(token);
  checkRecord(await store.list(), claims.id, Buffer.from(hashTokenSecret(payload, secret), 'hex'), now);
  return claims;
}

/** The index of the token's record if it may join at `now`; CmdopError('denied') saying why not. */
function checkRecord(records: readonly JoinTokenRecord[], id: string, presentedHash: Buffer, now: Date): number {
  const index = records.findIndex((record) => record.id === id);
  const record = records[index];
  // The secret is checked before anything else is revealed about the token's state.
  if (record === undefined || !timingSafeEqual(Buffer.from(record.secretHash, 'hex'), presentedHash)) {
    throw new CmdopError('denied', 'the join token is not one this workspace issued', {
      hint: 'Check that you copied the whole token, or ask for a new one with `cmdop workspace invite` on the CA host.',
    });
  }
  if (record.used) {
    throw new CmdopError('denied', `the join token was already used${record.usedAt === undefined ? '' : ` at ${record.usedAt}`}; each token joins one host once`, {
      hint: 'Ask for a new token with `cmdop workspace invite` on the CA host.',
      details: { id: record.id },
    });
  }
  if (now.getTime() >= Date.parse(record.expiresAt)) {
    throw new CmdopError('denied', `the join token expired at ${record.expiresAt}`, {
      hint: 'Ask for a new token with `cmdop workspace invite` on the CA host.',
      details: { id: record.id, expiresAt: record.expiresAt },
    });
  }
  return index;
}

interface SplitToken {
  readonly claims: JoinTokenClaims;
  readonly payload: string;
  readonly secret: Buffer;
}

function splitToken(token: string): SplitToken {
  const malformed = (what: string): CmdopError =>
    new CmdopError('invalid_input', `this is not a cmdop join token: ${what}`, {
      hint: 'Copy the whole token printed by `cmdop workspace invite` (it starts with "cmdop-join.").',
    });
  const { payload, json, secret } = splitSecretToken(token, JOIN_TOKEN_PREFIX, malformed);
  const parsed = payloadSchema.safeParse(json);
  if (!parsed.success) throw malformed('its payload does not have the fields of a version 1 token');
  let serverAddress: string;
  try {
    serverAddress = validateServerAddress(parsed.data.addr);
  } catch {
    throw malformed('its server address is not HOST:PORT');
  }
  return {
    claims: { version: 1, id: parsed.data.id, caFingerprint: parsed.data.fp, serverAddress, expiresAt: new Date(parsed.data.exp), ...(parsed.data.ca === undefined ? {} : { caHostName: parsed.data.ca }) },
    payload,
    secret,
  };
}

function parseStoreFile(path: string, text: string | undefined): readonly JoinTokenRecord[] {
  if (text === undefined) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw damaged(path, error);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) throw damaged(path, parsed.error);
  return parsed.data.tokens.map((record) => ({
    id: record.id,
    secretHash: record.secretHash,
    expiresAt: record.expiresAt,
    used: record.used,
    ...(record.usedAt === undefined ? {} : { usedAt: record.usedAt }),
  }));
}

function serializeStore(records: readonly JoinTokenRecord[]): string {
  return `${JSON.stringify({ version: 1, tokens: records }, null, 2)}\n`;
}

function damaged(path: string, cause: unknown): CmdopError {
  return new CmdopError('config', `${path} is damaged: it is not a cmdop join-token list`, {
    cause,
    hint: `Move it away; outstanding invitations are then void and can be minted again with \`cmdop workspace invite\`.`,
    details: { path },
  });
}
