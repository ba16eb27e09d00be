/**
 * Who a caller without a host certificate is (DESIGN.md §4.5, §6; issue 4): the bearer
 * credential it presents decides, and nothing else. Three kinds, told apart by their form:
 * - `cmdop-key.…` — a workspace API key, checked against the workspace's key hashes: `key:<name>`;
 * - `cmdop-share.…` — a share token, valid on the one host it names only: `guest:<link id>`;
 * - a JWT — an OAuth access token from the workspace's OpenID provider: `user:<subject>`.
 * Every refusal is CmdopError('denied') with `stage: 'authentication'`, and never quotes the
 * credential. Any error on the way (a damaged file, an unreachable provider) refuses: fail closed.
 */
import { CmdopError } from '../errors.js';
import { API_KEY_PREFIX, parseApiKey, verifyApiKey, verifyApiKeyWith, type ApiKeyRecord } from '../identity/api-key.js';
import { createAccessTokenVerifier, validateOidcSettings, type AccessTokenVerifier } from '../identity/oidc.js';
import { SHARE_PREFIX, verifyShare } from '../identity/share-link.js';
import type { CallerCredential } from '../gate/caller.js';
import type { ApiKeyEntry, OidcConfig, RemoteCaller } from '../transport/mesh-handler.js';
import { currentCredentials, currentOidc } from './workspace-credentials.js';

/** Options for {@link createBearerAuthenticator}. */
export interface BearerAuthOptions {
  readonly home: string;
  /** This host's name: a share token must name it. */
  readonly selfHost: string;
  readonly isCa: boolean;
  /** The workspace CA fingerprint: an API key must carry it. */
  readonly caFingerprint: string;
  /** Joined host: fetch the CA host's credentials now (an API key created a moment ago). */
  readonly refreshCredentials?: () => Promise<void>;
  /** Joined host: when the CA host last answered (epoch ms), so a copy too old to know of recent revocations is not trusted. */
  readonly lastCaContact?: () => number;
  /** How old the copy of the key list may be before API keys are refused (default 150 s). */
  readonly maxCredentialsAgeMs?: number;
  /** Where the details of a failure that is not a refusal go; the caller only hears that the host cannot verify. */
  readonly onError?: (error: unknown) => void;
  readonly now?: () => Date;
}

/** Default for {@link BearerAuthOptions.maxCredentialsAgeMs}: ten default announce intervals. */
export const MAX_CREDENTIALS_AGE_MS = 150_000;

/** Authenticates one bearer credential; resolves with the caller or rejects with CmdopError('denied'). */
export type BearerAuthenticator = (credential: string, call: { readonly peer: string }) => Promise<RemoteCaller>;

export function createBearerAuthenticator(options: BearerAuthOptions): BearerAuthenticator {
  const now = (): Date => options.now?.() ?? new Date();
  let oauth: { readonly config: string; readonly verifier: AccessTokenVerifier } | undefined;

  /** A joined host that has not heard from the CA host for a while cannot know which keys were revoked since. */
  const requireFreshCopy = async (): Promise<void> => {
    const lastContact = options.lastCaContact;
    if (lastContact === undefined) return;
    const maxAge = options.maxCredentialsAgeMs ?? MAX_CREDENTIALS_AGE_MS;
    if (now().getTime() - lastContact() <= maxAge) return;
    await options.refreshCredentials?.();
    const age = now().getTime() - lastContact();
    if (age <= maxAge) return;
    throw refused(
      lastContact() === 0 ? 'this host has not yet reached the CA host, so it cannot know whether the API key was revoked' : `this host has not reached the CA host for ${Math.round(age / 1000)} s, so it cannot know whether the API key was revoked`,
      'Try again once the CA host is reachable from this host (cmdop peers list shows it online).',
    );
  };

  const apiKey = async (key: string): Promise<string> => {
    const claims = parseClaims(key);
    if (claims.caFingerprint !== options.caFingerprint) {
      throw refused('the API key was made for another workspace', 'Use a key created on the CA host of the workspace this host belongs to.');
    }
    // The CA host checks its own records, and notes when each key was last used.
    if (options.isCa) return (await verifyApiKey(options.home, key, now())).principal;
    await requireFreshCopy();
    let keys = (await currentCredentials(options.home, false)).api_keys;
    if (!keys.some((k) => k.id === claims.id) && options.refreshCredentials !== undefined) {
      // A key created on the CA host since this host's last announce: ask for the list now.
      await options.refreshCredentials();
      keys = (await currentCredentials(options.home, false)).api_keys;
    }
    return verifyApiKeyWith(asRecords(keys), key, now()).principal;
  };

  const accessToken = async (token: string): Promise<string> => {
    const oidc = await currentOidc(options.home, options.isCa);
    if (oidc === null) {
      throw refused('this workspace has no OpenID provider, so OAuth access tokens are not accepted', 'Set one on the CA host with `cmdop workspace oidc set --issuer URL --client-id ID`, or use an API key.');
    }
    const config = JSON.stringify(oidc);
    // The settings are checked as `workspace oidc set` checks them (https, or http on loopback only).
    if (oauth?.config !== config) oauth = { config, verifier: createAccessTokenVerifier(validateOidcSettings(settingsOf(oidc)), { now }) };
    return (await oauth.verifier.verify(token)).principal;
  };

  return async (credential, call) => {
    let principal: string;
    let kind: CallerCredential;
    try {
      if (credential.startsWith(`${API_KEY_PREFIX}.`)) {
        kind = 'api_key';
        principal = await apiKey(credential);
      } else if (credential.startsWith(`${SHARE_PREFIX}.`)) {
        kind = 'share';
        principal = (await verifyShare(options.home, credential, { hostName: options.selfHost, now: now() })).principal;
      } else {
        kind = 'oauth';
        principal = await accessToken(credential);
      }
    } catch (error) {
      throw asRefusal(error, options.onError);
    }
    return Object.freeze({ kind: 'remote', host: '', principal, credential: kind, address: call.peer });
  };
}

const recordsOf = new WeakMap<readonly ApiKeyEntry[], readonly ApiKeyRecord[]>();

/** The CA host's key entries in the shape the verifier takes (built once per copy received). */
function asRecords(entries: readonly ApiKeyEntry[]): readonly ApiKeyRecord[] {
  let records = recordsOf.get(entries);
  if (records === undefined) {
    records = entries.map((e) => ({ id: e.id, name: e.name, secretHash: e.secret_hash, created_at: '', expires_at: e.expires_at, last_used_at: null, revoked_at: e.revoked_at }));
    recordsOf.set(entries, records);
  }
  return records;
}

function settingsOf(oidc: OidcConfig): { issuer: string; clientId: string; audience?: string } {
  return { issuer: oidc.issuer, clientId: oidc.client_id, ...(oidc.audience === null ? {} : { audience: oidc.audience }) };
}

function parseClaims(key: string): ReturnType<typeof parseApiKey> {
  try {
    return parseApiKey(key);
  } catch (error) {
    // A malformed key: its message names what is wrong with the form, never the key.
    throw refused(CmdopError.from(error).message, 'Copy the whole key printed by `cmdop workspace keys create`.');
  }
}

function refused(reason: string, hint: string): CmdopError {
  return new CmdopError('denied', `refused before the gate: ${reason}`, { hint, details: { stage: 'authentication' } });
}

/**
 * Any failure to authenticate is a refusal before the gate. A deliberate refusal (a bad,
 * revoked or expired credential) says why, never quoting the credential; anything else (a
 * damaged file, a lock, a bug) stays in this host's log, and the caller only hears that the
 * host cannot verify credentials now.
 */
function asRefusal(error: unknown, onError?: (error: unknown) => void): CmdopError {
  if (error instanceof CmdopError && error.code === 'denied') {
    if (error.details?.stage === 'authentication') return error;
    const reason = error.message.startsWith('refused before the gate') ? error.message : `refused before the gate: ${error.message}`;
    return new CmdopError('denied', reason, { cause: error, ...(error.hint === undefined ? {} : { hint: error.hint }), details: { stage: 'authentication' } });
  }
  onError?.(error);
  return refused('this host cannot verify credentials right now', "The host's operator can see why in its agent log (logs/agent.log).");
}
