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
import { createAccessTokenVerifier, type AccessTokenVerifier } from '../identity/oidc.js';
import { SHARE_PREFIX, verifyShare } from '../identity/share-link.js';
import type { CallerCredential } from '../gate/caller.js';
import type { ApiKeyEntry, OidcConfig, RemoteCaller } from '../transport/mesh-handler.js';
import { currentCredentials } from './workspace-credentials.js';

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
  readonly now?: () => Date;
}

/** Authenticates one bearer credential; resolves with the caller or rejects with CmdopError('denied'). */
export type BearerAuthenticator = (credential: string, call: { readonly peer: string }) => Promise<RemoteCaller>;

export function createBearerAuthenticator(options: BearerAuthOptions): BearerAuthenticator {
  const now = (): Date => options.now?.() ?? new Date();
  let verifier: { readonly config: string; readonly verify: AccessTokenVerifier } | undefined;

  const apiKey = async (key: string): Promise<string> => {
    const claims = parseClaims(key);
    if (claims.caFingerprint !== options.caFingerprint) {
      throw refused('the API key was made for another workspace', 'Use a key created on the CA host of the workspace this host belongs to.');
    }
    // The CA host checks its own records, and notes when each key was last used.
    if (options.isCa) return (await verifyApiKey(options.home, key, now())).principal;
    let keys = (await currentCredentials(options.home, false)).api_keys;
    if (!keys.some((k) => k.id === claims.id) && options.refreshCredentials !== undefined) {
      // A key created on the CA host since this host's last announce: ask for the list now.
      await options.refreshCredentials();
      keys = (await currentCredentials(options.home, false)).api_keys;
    }
    return verifyApiKeyWith(asRecords(keys), key, now()).principal;
  };

  const accessToken = async (token: string): Promise<string> => {
    const { oidc } = await currentCredentials(options.home, options.isCa);
    if (oidc === null) {
      throw refused('this workspace has no OpenID provider, so OAuth access tokens are not accepted', 'Set one on the CA host with `cmdop workspace oidc set --issuer URL --client-id ID`, or use an API key.');
    }
    const config = JSON.stringify(oidc);
    if (verifier?.config !== config) verifier = { config, verify: createAccessTokenVerifier(settingsOf(oidc), { now }) };
    return (await verifier.verify.verify(token)).principal;
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
      throw asRefusal(error);
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
    throw asRefusal(error);
  }
}

function refused(reason: string, hint: string): CmdopError {
  return new CmdopError('denied', `refused before the gate: ${reason}`, { hint, details: { stage: 'authentication' } });
}

/** Any failure to authenticate is a refusal before the gate; its message was written never to quote the credential. */
function asRefusal(error: unknown): CmdopError {
  const e = CmdopError.from(error);
  if (e.code === 'denied' && e.details?.stage === 'authentication') return e;
  const reason = e.message.startsWith('refused before the gate') ? e.message : `refused before the gate: ${e.message}`;
  return new CmdopError('denied', reason, { cause: error, ...(e.hint === undefined ? {} : { hint: e.hint }), details: { stage: 'authentication' } });
}
