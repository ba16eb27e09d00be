/**
 * The OAuth session of this machine (issue 4 §2): `cmdop login` runs the device flow and keeps
 * the refresh token (and the current access token) in the secret store, what is not secret in
 * `CMDOP_HOME/oauth.json` (0600). The daemon refreshes the access token about five minutes
 * before it expires; a CLI call takes the daemon's fresh token over the local socket, or
 * refreshes itself when no daemon runs.
 *
 * Every change (login, refresh, logout) happens under one lock on oauth.json and re-reads the
 * tokens under it, so a login and a refresh running at once never lose a refresh token: the
 * later one always starts from what the earlier one stored (providers rotate refresh tokens, and
 * replaying an old one can end the whole session).
 */
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ensureCmdopHome } from '../config/cmdop-home.js';
import { withFileLock } from '../config/file-lock.js';
import { parseJsonState } from '../config/json-file.js';
import { readSecureFile, writeFileAtomic } from '../config/secure-file.js';
import { createStatCache } from '../config/stat-cache.js';
import { CmdopError } from '../errors.js';
import { discoverProvider, pollDeviceToken, refreshTokens, revokeRefreshToken, startDeviceAuthorization, validateOidcSettings, type DeviceAuthorization, type OidcSettings, type OidcTokenSet } from '../identity/oidc.js';
import { openSecretStore, type SecretStore } from '../identity/secret-store.js';
import { readOidcConfig, type OidcConfig } from '../identity/oidc-config.js';
import { localRequest } from './local-client.js';
import { LOCAL_ROUTES, type OauthTokenReply } from '../transport/local-api.js';

/** The secret-store service of OAuth tokens; accounts `refresh_token` and `access_token`. */
export const OAUTH_SERVICE = 'cmdop-oauth';
/** The daemon refreshes when the access token has less than this left. */
export const REFRESH_LEAD_MS = 5 * 60 * 1000;
/** A token handed to a CLI call has at least this long left. */
const MIN_CALL_VALIDITY_MS = 60 * 1000;

const metaSchema = z
  .object({
    version: z.literal(1),
    issuer: z.string().url(),
    client_id: z.string().min(1),
    audience: z.string().min(1).nullable(),
    subject: z.string().nullable(),
    access_expires_at: z.string().datetime(),
    logged_in_at: z.string().datetime(),
    refreshed_at: z.string().datetime().nullable(),
  })
  .strict();
type SessionMeta = z.infer<typeof metaSchema>;

/** What `cmdop whoami` and `cmdop login` show about the session; never a token. */
export interface OauthStatus {
  readonly logged_in: boolean;
  readonly issuer: string | null;
  readonly subject: string | null;
  readonly access_expires_at: string | null;
  readonly logged_in_at: string | null;
  readonly refreshed_at: string | null;
}

export function oauthSessionPath(home: string): string {
  return join(home, 'oauth.json');
}

const metaCache = createStatCache(async (file) => parseMeta(file, await readSecureFile(file)));

export async function oauthStatus(home: string): Promise<OauthStatus> {
  const meta = await metaCache.read(oauthSessionPath(home));
  if (meta === undefined) return { logged_in: false, issuer: null, subject: null, access_expires_at: null, logged_in_at: null, refreshed_at: null };
  return { logged_in: true, issuer: meta.issuer, subject: meta.subject, access_expires_at: meta.access_expires_at, logged_in_at: meta.logged_in_at, refreshed_at: meta.refreshed_at };
}

/**
 * The provider `cmdop login` uses: the one set on this machine with `cmdop workspace oidc set`,
 * else the workspace's, as the CA host sent it. CmdopError('config') when there is none.
 */
export async function loginSettings(home: string, workspaceOidc: OidcConfig | null): Promise<OidcSettings> {
  const config = (await readOidcConfig(home)) ?? workspaceOidc;
  if (config === null) {
    throw new CmdopError('config', 'no OpenID provider is configured, so there is nothing to log in to', {
      hint: 'Set one with `cmdop workspace oidc set --issuer URL --client-id ID [--audience AUD]` (on the CA host for the whole workspace).',
    });
  }
  return validateOidcSettings({ issuer: config.issuer, clientId: config.client_id, audience: config.audience ?? undefined });
}

/** What the user must do to log in: shown by `cmdop login`. */
export type LoginPrompt = Pick<DeviceAuthorization, 'userCode' | 'verificationUri' | 'verificationUriComplete' | 'expiresAt'>;

/**
 * Runs the device authorization grant: shows the code through `prompt`, polls as the provider
 * asks (slow_down honoured), and stores the tokens. Resolves with the new status.
 */
export async function login(home: string, settings: OidcSettings, options: { prompt: (p: LoginPrompt) => void; signal?: AbortSignal; onSlowDown?: (ms: number) => void; notice?: (line: string) => void }): Promise<OauthStatus> {
  const metadata = await discoverProvider(settings, { signal: options.signal });
  const authorization = await startDeviceAuthorization(settings, metadata, { signal: options.signal });
  options.prompt({ userCode: authorization.userCode, verificationUri: authorization.verificationUri, verificationUriComplete: authorization.verificationUriComplete, expiresAt: authorization.expiresAt });
  const tokens = await pollDeviceToken(settings, metadata, authorization, { signal: options.signal, onSlowDown: options.onSlowDown });
  if (tokens.refreshToken === undefined) {
    throw new CmdopError('config', 'the provider issued no refresh token, so the login could not outlive one access token', {
      hint: 'Allow the offline_access scope (refresh tokens) for this client at the provider.',
    });
  }
  await ensureCmdopHome(home);
  const store = await openStore(home, options.notice);
  await withFileLock(oauthSessionPath(home), async (held) => {
    const now = new Date().toISOString();
    await saveTokens(store, tokens);
    held.assertHeld();
    await writeMeta(home, {
      version: 1,
      issuer: settings.issuer,
      client_id: settings.clientId,
      audience: settings.audience ?? null,
      subject: tokens.subject ?? null,
      access_expires_at: tokens.expiresAt.toISOString(),
      logged_in_at: now,
      refreshed_at: null,
    }, held.assertHeld);
  });
  return oauthStatus(home);
}

/** What {@link logout} did. */
export interface LogoutResult {
  /** Whether there was a session to forget. */
  readonly logged_out: boolean;
  /** Whether the provider revoked the refresh token; null when there was none to revoke or it offers no revocation. */
  readonly revoked_at_provider: boolean | null;
  /** Why the provider could not revoke it, when it could not (the local session is forgotten anyway). */
  readonly revocation_error: string | null;
}

/**
 * Forgets the session (tokens and oauth.json), after asking the provider to revoke the refresh
 * token (RFC 7009) so that a copy of it is worthless too. The local session is forgotten even
 * when the provider cannot be reached.
 */
export async function logout(home: string, notice?: (line: string) => void): Promise<LogoutResult> {
  const store = await openStore(home, notice);
  return withFileLock(oauthSessionPath(home), async () => {
    const file = oauthSessionPath(home);
    const meta = parseMeta(file, await readSecureFile(file));
    const refresh = await store.get(OAUTH_SERVICE, 'refresh_token');
    let revoked: boolean | null = null;
    let revocationError: string | null = null;
    if (meta !== undefined && refresh !== undefined) {
      try {
        const settings = validateOidcSettings({ issuer: meta.issuer, clientId: meta.client_id, audience: meta.audience ?? undefined });
        revoked = (await revokeRefreshToken(settings, await discoverProvider(settings, { timeoutMs: 5_000 }), refresh, { timeoutMs: 5_000 })) ? true : null;
      } catch (error) {
        revoked = false;
        revocationError = CmdopError.from(error).message;
      }
    }
    const a = await store.delete(OAUTH_SERVICE, 'refresh_token');
    const b = await store.delete(OAUTH_SERVICE, 'access_token');
    if (meta !== undefined) await unlink(file);
    return { logged_out: meta !== undefined || a || b, revoked_at_provider: revoked, revocation_error: revocationError };
  });
}

/**
 * An access token with at least `minValidityMs` left, refreshing it (under the lock) when it has
 * less. CmdopError('config') when not logged in; CmdopError('denied') when the provider refuses
 * the refresh token (log in again).
 */
export async function freshAccessToken(home: string, options: { minValidityMs?: number; now?: () => Date; notice?: (line: string) => void } = {}): Promise<{ accessToken: string; expiresAt: Date; subject: string | null }> {
  const now = options.now ?? (() => new Date());
  const minValidityMs = options.minValidityMs ?? MIN_CALL_VALIDITY_MS;
  const store = await openStore(home, options.notice);
  const file = oauthSessionPath(home);
  return withFileLock(file, async (held) => {
    const meta = parseMeta(file, await readSecureFile(file));
    if (meta === undefined) throw notLoggedIn();
    const access = await store.get(OAUTH_SERVICE, 'access_token');
    const expiresAt = new Date(meta.access_expires_at);
    if (access !== undefined && expiresAt.getTime() - now().getTime() > minValidityMs) return { accessToken: access, expiresAt, subject: meta.subject };
    const refresh = await store.get(OAUTH_SERVICE, 'refresh_token');
    if (refresh === undefined) throw notLoggedIn();
    const settings = validateOidcSettings({ issuer: meta.issuer, clientId: meta.client_id, audience: meta.audience ?? undefined });
    const tokens = await refreshTokens(settings, await discoverProvider(settings), refresh);
    await saveTokens(store, tokens);
    held.assertHeld();
    await writeMeta(home, { ...meta, subject: tokens.subject ?? meta.subject, access_expires_at: tokens.expiresAt.toISOString(), refreshed_at: now().toISOString() }, held.assertHeld);
    return { accessToken: tokens.accessToken, expiresAt: tokens.expiresAt, subject: tokens.subject ?? meta.subject };
  });
}

/**
 * The access token for one CLI call: the daemon's (it keeps it fresh) when a daemon runs, else
 * refreshed here. Never printed.
 */
export async function oauthAccessToken(home: string): Promise<string> {
  try {
    const reply = await localRequest<OauthTokenReply>({ home, timeoutMs: 15_000 }, LOCAL_ROUTES.oauthToken);
    return reply.access_token;
  } catch (error) {
    // No daemon here (or an older one), or a daemon that sees no session (started where another
    // secret store answered, say without the desktop's keyring): this process refreshes by itself.
    if (!(error instanceof CmdopError) || (error.code !== 'unavailable' && error.code !== 'invalid_input' && error.code !== 'config')) throw error;
  }
  return (await freshAccessToken(home)).accessToken;
}

async function saveTokens(store: SecretStore, tokens: OidcTokenSet): Promise<void> {
  // The refresh token first: if the access token write fails, the next refresh still works.
  if (tokens.refreshToken !== undefined) await store.set(OAUTH_SERVICE, 'refresh_token', tokens.refreshToken);
  await store.set(OAUTH_SERVICE, 'access_token', tokens.accessToken);
}

async function writeMeta(home: string, meta: SessionMeta, beforeRename: () => void): Promise<void> {
  await writeFileAtomic(oauthSessionPath(home), `${JSON.stringify(meta, null, 2)}\n`, 0o600, { beforeRename });
}

function openStore(home: string, notice?: (line: string) => void): Promise<SecretStore> {
  return openSecretStore({ home, ...(notice === undefined ? {} : { notice }) });
}

function parseMeta(file: string, text: string | undefined): SessionMeta | undefined {
  if (text === undefined) return undefined;
  return parseJsonState(text, metaSchema, (cause) => damaged(file, cause));
}

function notLoggedIn(): CmdopError {
  return new CmdopError('config', 'not logged in with OAuth on this machine', { hint: 'Run `cmdop login`.' });
}

function damaged(file: string, cause: unknown): CmdopError {
  return new CmdopError('config', `${file} is damaged: it is not a cmdop OAuth session`, { cause, hint: 'Run `cmdop logout`, then `cmdop login`.', details: { path: file } });
}
