/**
 * Share links (guest tokens): a host's operator mints one for a person or program outside the
 * workspace, who may then call that one host, as the principal `guest:<id>` and through its gate
 * like any caller, until the link expires or is revoked.
 *
 * A link reads `cmdop-share.<payload>.<secret>` (secret-token.ts): the payload is base64url JSON
 * `{v:1,id,host,fp,addr,exp}` — the host it is bound to, the workspace CA fingerprint the guest
 * checks that host's certificate against, the `HOST:PORT` it listens at, and the expiry (ms since
 * the epoch); the secret is 32 random bytes. The host keeps only `CMDOP_HOME/shares.json` (0600),
 * whose records hold the SHA-256 binding the secret to the payload: a link whose host, address
 * or expiry was changed is as unknown as a forged one.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { CmdopError } from '../errors.js';
import { checkAddress, checkHostName, createCredentialFile, CREDENTIAL_ID, credentialState, describeCredential, hashedRecordFields, isoTime, issueCredential, matchCredential, payloadFields, presentCredential, splitCredential } from './hashed-credentials.js';
import type { CredentialFormat, CredentialInfo, CredentialRefusals, CredentialState, HashedCredentialRecord, PresentedCredential } from './hashed-credentials.js';
import { normalizeFingerprint } from './workspace-ca.js';

/** Every share link starts with this, then a `.`. */
export const SHARE_PREFIX = 'cmdop-share';

/** The longest a share link may live: 720 hours (30 days). */
export const MAX_SHARE_TTL_HOURS = 720;

const HOUR_MS = 60 * 60 * 1000;

/** Ended links (expired or revoked) are dropped from the file this long after they ended, when a link is minted. */
const PRUNE_AFTER_MS = 30 * 24 * HOUR_MS;

/** What a guest learns from a share link without verifying it. */
export interface ShareClaims {
  readonly version: 1;
  /** The link id (32 lowercase hex characters); not secret. */
  readonly id: string;
  /** The one host the link is valid on. */
  readonly host: string;
  /** The workspace CA fingerprint the host must present (64 lowercase hex characters). */
  readonly caFingerprint: string;
  /** Where the host listens, `HOST:PORT`. */
  readonly address: string;
  readonly expiresAt: Date;
}

/** What the host stores per link: no secret, only its hash. */
export interface ShareRecord extends HashedCredentialRecord {
  /** The host the link is bound to: the one that minted it. */
  readonly host: string;
  /** A share link always expires. */
  readonly expires_at: string;
}

/** Whether a link is usable at the time of listing. */
export type ShareState = CredentialState;

/** A link as `connect share list` shows it: everything but the hash. */
export type ShareInfo = CredentialInfo<ShareRecord>;

/** Options for {@link mintShare}. */
export interface MintShareOptions {
  /** This host's name (the link is valid here only). */
  readonly hostName: string;
  /** The `HOST:PORT` guests reach this host at. */
  readonly address: string;
  /** The workspace CA fingerprint (colons and upper case accepted). */
  readonly caFingerprint: string;
  /** Whole hours the link works, 1 to {@link MAX_SHARE_TTL_HOURS}; see {@link shareTtlHours}. */
  readonly ttlHours: number;
  /** The minting time (default: the current time). */
  readonly now?: Date;
}

/** A freshly minted link: `token` is shown to the operator once and never stored. */
export interface MintedShare {
  /** The whole link, secret included. Show it once; never log or store it. */
  readonly token: string;
  readonly id: string;
  readonly host: string;
  readonly address: string;
  /** ISO 8601 times. */
  readonly created_at: string;
  readonly expires_at: string;
  /** `guest:<id>`, the principal the gate and the audit log see. */
  readonly principal: `guest:${string}`;
}

/** Options for {@link verifyShareWith} and {@link verifyShare}. */
export interface VerifyShareOptions {
  /** The name of the host verifying: the link must be bound to it. */
  readonly hostName: string;
  readonly now: Date;
}

/** The outcome of a verification: who the guest is, and until when. */
export interface VerifiedShare {
  readonly id: string;
  /** `guest:<id>`, the principal the gate and the audit log see. */
  readonly principal: `guest:${string}`;
  readonly expiresAt: Date;
}

const payloadSchema = z
  .object({
    v: z.literal(1),
    id: z.string().regex(CREDENTIAL_ID),
    host: payloadFields.hostName,
    fp: payloadFields.fingerprint,
    addr: payloadFields.address,
    exp: z.number().int().positive(),
  })
  .strict();

const shareFormat: CredentialFormat<z.infer<typeof payloadSchema>> = { prefix: SHARE_PREFIX, payload: payloadSchema, noun: 'share link', issuedBy: 'cmdop connect share' };

// `host` second, so the file and `share list --json` read id, host, then the rest; a link always expires.
const shareFile = createCredentialFile<ShareRecord>(shareFormat, {
  listKey: 'shares',
  record: z.object({ id: hashedRecordFields.id, host: payloadFields.hostName }).merge(z.object(hashedRecordFields)).extend({ expires_at: isoTime }).strict(),
});

/** Every refusal says where the call stopped: before the gate, at authentication. */
const AUTHENTICATION = { stage: 'authentication' } as const;

const NEW_LINK_HINT = "Ask the host's operator for a new link (`cmdop connect share HOST` on that host).";

const refusals: CredentialRefusals<ShareRecord> = {
  unknown: () =>
    new CmdopError('denied', 'the share link is not one this host issued', {
      hint: `Check that the whole link was copied. ${NEW_LINK_HINT}`,
      details: AUTHENTICATION,
    }),
  revoked: (record) =>
    new CmdopError('denied', `the share link ${record.id} was revoked at ${record.revoked_at ?? 'an unknown time'}`, {
      hint: NEW_LINK_HINT,
      details: { ...AUTHENTICATION, id: record.id },
    }),
  expired: (record) =>
    new CmdopError('denied', `the share link ${record.id} expired at ${record.expires_at}`, {
      hint: NEW_LINK_HINT,
      details: { ...AUTHENTICATION, id: record.id, expiresAt: record.expires_at },
    }),
};

/** The share-link store of a cmdop home: `CMDOP_HOME/shares.json` (mode 0600). */
export function sharesPath(home: string): string {
  return join(home, 'shares.json');
}

/**
 * A link's lifetime in whole hours from a duration in milliseconds, rounded up (90 minutes make
 * 2 hours); CmdopError('invalid_input') for a duration that is not positive or exceeds
 * {@link MAX_SHARE_TTL_HOURS} hours.
 */
export function shareTtlHours(ms: number): number {
  const hours = Number.isFinite(ms) && ms > 0 ? Math.ceil(ms / HOUR_MS) : 0;
  if (hours < 1 || hours > MAX_SHARE_TTL_HOURS) {
    throw new CmdopError('invalid_input', `a share link lives from 1 to ${MAX_SHARE_TTL_HOURS} hours (30 days), rounded up to whole hours`, {
      hint: 'For example: --ttl 24h, --ttl 90m (2 hours) or --ttl 30d.',
      details: { ttlMs: ms },
    });
  }
  return hours;
}

/**
 * Mints a share link bound to this host: the link carries the host's name and address and the
 * workspace CA fingerprint; only its hash is stored. CmdopError('invalid_input') for a bad host
 * name, address, fingerprint or lifetime.
 */
export async function mintShare(home: string, options: MintShareOptions): Promise<MintedShare> {
  const { ttlHours } = options;
  const hostName = checkHostName(options.hostName, "Give this host's name as workspace.json says it.");
  const address = checkAddress(options.address);
  if (!Number.isInteger(ttlHours) || ttlHours < 1 || ttlHours > MAX_SHARE_TTL_HOURS) {
    throw new CmdopError('invalid_input', `a share link lives from 1 to ${MAX_SHARE_TTL_HOURS} whole hours`, { hint: 'For example: --ttl 24h.', details: { ttlHours } });
  }
  const fingerprint = normalizeFingerprint(options.caFingerprint);
  const now = options.now ?? new Date();
  const expiresAt = new Date(now.getTime() + ttlHours * HOUR_MS);
  const issued = issueCredential(SHARE_PREFIX, (id) => ({ v: 1, id, host: hostName, fp: fingerprint, addr: address, exp: expiresAt.getTime() }), now, expiresAt);
  const record: ShareRecord = { ...issued.record, host: hostName, expires_at: expiresAt.toISOString() };
  await shareFile.update(sharesPath(home), (records) => [...records.filter((each) => !longEnded(each, now)), record]);
  return { token: issued.token, id: record.id, host: hostName, address, created_at: record.created_at, expires_at: record.expires_at, principal: `guest:${record.id}` };
}

/** Lists this host's share links, oldest first, with their state at `now`; never a link or its hash. */
export async function listShares(home: string, now: Date = new Date()): Promise<readonly ShareInfo[]> {
  return (await shareFile.read(sharesPath(home))).map((record) => describeCredential(record, now));
}

/**
 * Revokes the share link `id`: from then on it is refused. CmdopError('invalid_input') for
 * something that is not a link id, CmdopError('not_found') when no link has it or it was
 * already revoked.
 */
export async function revokeShare(home: string, id: string, now: Date = new Date()): Promise<ShareInfo> {
  if (!CREDENTIAL_ID.test(id)) {
    throw new CmdopError('invalid_input', `${JSON.stringify(id.slice(0, 100))} is not a share link id: it is 32 lower-case hex characters`, {
      hint: 'See the ids with `cmdop connect share list`.',
    });
  }
  const [revoked] = await shareFile.revoke(sharesPath(home), now, (records) => {
    const record = records.find((each) => each.id === id);
    if (record === undefined || record.revoked_at !== null) {
      throw new CmdopError('not_found', record === undefined ? `there is no share link ${id} on this host` : `the share link ${id} was already revoked at ${record.revoked_at ?? 'an unknown time'}`, {
        hint: 'See the links with `cmdop connect share list`.',
        details: { id },
      });
    }
    return [record];
  });
  if (revoked === undefined) throw new CmdopError('internal', `the revoked share link ${id} is missing from ${sharesPath(home)}`);
  return describeCredential(revoked, now);
}

/** Revokes every link of this host that is active at `now`; returns them (none when there were none). */
export async function revokeAllShares(home: string, now: Date = new Date()): Promise<readonly ShareInfo[]> {
  const revoked = await shareFile.revoke(sharesPath(home), now, (records) => records.filter((each) => credentialState(each, now) === 'active'));
  return revoked.map((record) => describeCredential(record, now));
}

/**
 * Reads a link's claims (host, address, CA fingerprint, expiry) without verifying it, for the
 * guest side; a malformed link is CmdopError('invalid_input'), whose message never quotes it.
 */
export function parseShareToken(token: string): ShareClaims {
  const { id, host, fp, addr, exp } = splitCredential(token, shareFormat).fields;
  return { version: 1, id, host, caFingerprint: fp, address: addr, expiresAt: new Date(exp) };
}

/**
 * Verifies a link against `records` (this host's): it must be bound to `hostName`, issued by
 * these records, match its secret (compared in constant time), and be unrevoked and unexpired at
 * `now`. Pure and synchronous, for the per-call path. Every refusal is CmdopError('denied') with
 * `stage: 'authentication'`, and never quotes the link.
 */
export function verifyShareWith(records: readonly ShareRecord[], token: string, options: VerifyShareOptions): VerifiedShare {
  return verified(matchCredential(records, presentShare(token, options.hostName), options.now, refusals));
}

/**
 * Verifies a link presented to this host as {@link verifyShareWith} does, against
 * `CMDOP_HOME/shares.json` (read again only when it changed). Records `last_used_at`, writing the
 * file at most once a minute per link.
 */
export async function verifyShare(home: string, token: string, options: VerifyShareOptions): Promise<VerifiedShare> {
  const presented = presentShare(token, options.hostName);
  const path = sharesPath(home);
  const record = matchCredential(await shareFile.read(path), presented, options.now, refusals);
  await shareFile.touchLastUsed(path, record, options.now);
  return verified(record);
}

function verified(record: ShareRecord): VerifiedShare {
  return { id: record.id, principal: `guest:${record.id}`, expiresAt: new Date(record.expires_at) };
}

/** A link taken apart for verification, refused unless well formed and bound to `hostName`. */
function presentShare(token: string, hostName: string): PresentedCredential {
  const presented = presentCredential(token, shareFormat, AUTHENTICATION);
  const { host } = presented.fields;
  // First: another host holds no record of the link, and the guest should hear why.
  if (host !== hostName) {
    throw new CmdopError('denied', `the share link is for the host "${host}", not this host ("${hostName}")`, {
      hint: `Call ${host} with it, or ask the operator of ${hostName} for a link of its own.`,
      details: { ...AUTHENTICATION, id: presented.id, host },
    });
  }
  return presented;
}

/** True for a link that ended (expired or was revoked) more than {@link PRUNE_AFTER_MS} before `now`. */
function longEnded(record: ShareRecord, now: Date): boolean {
  const ended = Math.min(Date.parse(record.expires_at), record.revoked_at === null ? Infinity : Date.parse(record.revoked_at));
  return ended + PRUNE_AFTER_MS < now.getTime();
}
