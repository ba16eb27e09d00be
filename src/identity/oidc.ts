/**
 * Signing in with an OpenID provider (issue 4 §2): the OAuth 2.0 device flow (RFC 8628) for
 * `cmdop login`, and refreshing the tokens it yields. Access tokens are checked on the receiving
 * host by the verifier of `oidc-verify.ts`, created here with {@link createAccessTokenVerifier}.
 *
 * cmdop is a public client: it sends its `client_id` and no secret. When an audience is
 * configured it asks for tokens meant for it with the `resource` parameter (RFC 8707). No token,
 * code or secret ever appears in an error message or its details.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { decodeJwt } from 'jose';
import { CmdopError } from '../errors.js';
import { buildAccessTokenVerifier, type AccessTokenVerifier, type AccessTokenVerifierOptions } from './oidc-verify.js';

export { ACCESS_TOKEN_ALGORITHMS, type AccessTokenRefusal, type AccessTokenVerifier, type AccessTokenVerifierOptions, type VerifiedAccessToken } from './oidc-verify.js';

/** Where cmdop signs in: the provider, the client registered there, and the API the tokens are for. */
export interface OidcSettings {
  /** The provider's issuer identifier, exactly as its discovery document states it. */
  readonly issuer: string;
  /** The public client registered at the provider for cmdop. */
  readonly clientId: string;
  /**
   * The audience access tokens must be issued for. Without it, tokens must name the client id,
   * which the provider's ID tokens for cmdop do too: set an audience wherever the provider can.
   */
  readonly audience?: string | undefined;
}

/** What the provider's discovery document says, reduced to what cmdop uses. */
export interface OidcMetadata {
  readonly issuer: string;
  readonly tokenEndpoint: string;
  readonly jwksUri: string;
  /** Undefined when the provider does not offer the device flow; `cmdop login` then cannot work. */
  readonly deviceAuthorizationEndpoint: string | undefined;
  /** Where a refresh token can be revoked (RFC 7009), when the provider offers it. */
  readonly revocationEndpoint?: string | undefined;
}

/** Options shared by every request to the provider. */
export interface OidcRequestOptions {
  /** Cancels the request (and, for polling, the wait between requests). */
  readonly signal?: AbortSignal | undefined;
  /** How long one request may take, in milliseconds (default 10 000). */
  readonly timeoutMs?: number | undefined;
  /** The current time, for expiry times (default: the system clock). */
  readonly now?: (() => Date) | undefined;
}

/** A started device authorization: the user visits `verificationUri` and enters `userCode`. */
export interface DeviceAuthorization {
  /** Secret between cmdop and the provider; never show or log it. */
  readonly deviceCode: string;
  /** The code the user types at the provider; shown to the user. */
  readonly userCode: string;
  readonly verificationUri: string;
  /** The verification page with the user code filled in, when the provider offers one. */
  readonly verificationUriComplete?: string | undefined;
  /** When the codes stop working. */
  readonly expiresAt: Date;
  /** How long to wait between token requests, in milliseconds (the provider's, or 5 s). */
  readonly intervalMs: number;
}

/** Options for {@link pollDeviceToken}. */
export interface PollDeviceTokenOptions extends OidcRequestOptions {
  /** Waits `ms` milliseconds (default: a timer); tests pass their own. */
  readonly sleep?: ((ms: number, signal?: AbortSignal) => Promise<void>) | undefined;
  /** Told the new interval each time the provider answers `slow_down`. */
  readonly onSlowDown?: ((intervalMs: number) => void) | undefined;
}

/** Tokens from the provider. Every field but `subject` and `expiresAt` is secret: never log them. */
export interface OidcTokenSet {
  readonly accessToken: string;
  /**
   * The refresh token. When a refresh response carries none, {@link refreshTokens} keeps the one
   * it was given (the provider does not rotate it); undefined when the provider issued none.
   */
  readonly refreshToken?: string | undefined;
  /** When the access token expires (from `expires_in`; 5 minutes when the provider omits it). */
  readonly expiresAt: Date;
  readonly idToken?: string | undefined;
  /** Who signed in, read from the ID token (or the access token) without verifying it: for display only. */
  readonly subject?: string | undefined;
  readonly scope?: string | undefined;
}

/** The scope `cmdop login` asks for: an OpenID sign-in that may be refreshed. */
export const OIDC_LOGIN_SCOPE = 'openid offline_access';

const DEFAULT_TIMEOUT_MS = 10_000;
const DEFAULT_INTERVAL_MS = 5_000;
const SLOW_DOWN_STEP_MS = 5_000;
/** Used when a token response has no `expires_in`: short, so cmdop refreshes early rather than late. */
const FALLBACK_TOKEN_LIFETIME_S = 300;
const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';
const VSCHAR = /^[\x20-\x7e]+$/;
const LOGIN_AGAIN = 'Run `cmdop login` again.';

/**
 * Checks OpenID settings from the configuration: the issuer must be an absolute https URL (http
 * only for loopback hosts) without query or fragment, the client id 1 to 256 and the audience 1 to
 * 512 printable characters. Returns them frozen; CmdopError('invalid_input') otherwise.
 */
export function validateOidcSettings(input: { readonly issuer: string; readonly clientId: string; readonly audience?: string | undefined }): OidcSettings {
  const badIssuer = (message: string): CmdopError =>
    new CmdopError('invalid_input', message, { hint: 'Use the issuer URL your identity provider documents, for example https://login.example.com/realms/dev.' });
  const issuer = checkProviderUrl(input.issuer, 'the OpenID issuer', badIssuer, true);
  if (!isPrintable(input.clientId, 256)) {
    throw new CmdopError('invalid_input', 'the OpenID client id must be 1 to 256 printable ASCII characters without leading or trailing spaces', {
      hint: 'Use the client id of the public (no secret) client registered for cmdop at your identity provider.',
    });
  }
  const { audience } = input;
  if (audience !== undefined && !isPrintable(audience, 512)) {
    throw new CmdopError('invalid_input', 'the OpenID audience must be 1 to 512 printable ASCII characters without leading or trailing spaces', {
      hint: 'Use the identifier of the API registered for the mesh at your identity provider, or leave the audience out.',
    });
  }
  return Object.freeze({ issuer, clientId: input.clientId, ...(audience === undefined ? {} : { audience }) });
}

/**
 * Reads `<issuer>/.well-known/openid-configuration`. The document must name the configured issuer
 * exactly and give a token endpoint and a JWKS URI. CmdopError('unavailable') when the provider
 * cannot be reached, CmdopError('config') when its document is wrong.
 */
export async function discoverProvider(settings: OidcSettings, options: OidcRequestOptions = {}): Promise<OidcMetadata> {
  const url = `${settings.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  const response = await send(url, { method: 'GET', headers: { accept: 'application/json' } }, settings, options);
  const notDiscovery = (why: string): CmdopError =>
    new CmdopError('config', `${url} is not a usable OpenID discovery document: ${why}`, {
      hint: 'Check the issuer in the configuration: it must be the provider\'s issuer URL, which serves /.well-known/openid-configuration.',
      details: { issuer: settings.issuer, url },
    });
  if (response.status !== 200) throw notDiscovery(`the provider answered HTTP ${response.status}`);
  const document = response.json;
  if (document === undefined) throw notDiscovery('it is not a JSON object');
  if (document.issuer !== settings.issuer) {
    const stated = typeof document.issuer === 'string' ? clean(document.issuer, 300) : undefined;
    throw new CmdopError('config', `the provider at ${url} calls itself ${stated === undefined ? 'nothing' : JSON.stringify(stated)}, not ${JSON.stringify(settings.issuer)}`, {
      hint: stated === undefined ? 'Check the issuer in the configuration.' : `Set the issuer to exactly ${JSON.stringify(stated)} (a trailing slash counts).`,
      details: { issuer: settings.issuer, url },
    });
  }
  const endpoint = (field: string): string => {
    const value = document[field];
    if (typeof value !== 'string') throw notDiscovery(`it has no "${field}"`);
    return checkProviderUrl(value, `its "${field}"`, notDiscovery);
  };
  return Object.freeze({
    issuer: settings.issuer,
    tokenEndpoint: endpoint('token_endpoint'),
    jwksUri: endpoint('jwks_uri'),
    deviceAuthorizationEndpoint: document.device_authorization_endpoint === undefined ? undefined : endpoint('device_authorization_endpoint'),
    revocationEndpoint: document.revocation_endpoint === undefined ? undefined : endpoint('revocation_endpoint'),
  });
}

/**
 * Starts a device authorization (RFC 8628 §3.1) for the scope `openid offline_access`, and for
 * the configured audience as `resource`. CmdopError('config') when the provider has no device
 * flow or refuses the client.
 */
export async function startDeviceAuthorization(settings: OidcSettings, metadata: OidcMetadata, options: OidcRequestOptions = {}): Promise<DeviceAuthorization> {
  const endpoint = metadata.deviceAuthorizationEndpoint;
  if (endpoint === undefined) {
    throw new CmdopError('config', `the identity provider ${settings.issuer} does not offer the device flow (its discovery document has no device_authorization_endpoint)`, {
      hint: 'Enable the OAuth 2.0 device authorization grant at the provider, for cmdop\'s client.',
      details: { issuer: settings.issuer },
    });
  }
  const now = (options.now ?? (() => new Date()))();
  const response = await send(endpoint, formRequest(withAudience(settings, { client_id: settings.clientId, scope: OIDC_LOGIN_SCOPE })), settings, options);
  const body = response.json;
  if (response.status !== 200 || body === undefined) throw providerRefusal(settings, 'device authorization', response, response.status >= 500 ? 'unavailable' : 'config');
  const deviceCode = body.device_code;
  const userCode = body.user_code;
  // `verification_url` is the name of a draft of RFC 8628 some providers still use.
  const verificationUri = body.verification_uri ?? body.verification_url;
  const complete = body.verification_uri_complete;
  const expiresIn = body.expires_in;
  const interval = body.interval ?? DEFAULT_INTERVAL_MS / 1000;
  const malformed = (why: string): CmdopError =>
    new CmdopError('config', `the identity provider's device authorization answer is unusable: ${why}`, { details: { issuer: settings.issuer } });
  if (typeof deviceCode !== 'string' || deviceCode === '') throw malformed('it has no device_code');
  if (typeof userCode !== 'string' || !isPrintable(userCode, 64)) throw malformed('it has no usable user_code');
  if (typeof verificationUri !== 'string') throw malformed('it has no verification_uri');
  if (typeof expiresIn !== 'number' || !(expiresIn > 0)) throw malformed('its expires_in is not a positive number');
  if (typeof interval !== 'number' || !(interval >= 0) || interval > 3600) throw malformed('its interval is not a number of seconds');
  return Object.freeze({
    deviceCode,
    userCode,
    verificationUri: checkProviderUrl(verificationUri, 'its verification_uri', malformed),
    ...(typeof complete === 'string' ? { verificationUriComplete: checkProviderUrl(complete, 'its verification_uri_complete', malformed) } : {}),
    expiresAt: new Date(now.getTime() + expiresIn * 1000),
    intervalMs: Math.max(Math.round(interval * 1000), 1000),
  });
}

/**
 * Asks the token endpoint for the tokens of a device authorization until the user approves it
 * (RFC 8628 §3.4-3.5): `authorization_pending` waits another interval, `slow_down` adds 5 s to
 * the interval for good. Refused (CmdopError('denied')) when the user declines, the code expires,
 * or the provider no longer knows the code; CmdopError('config') when it refuses the client.
 */
export async function pollDeviceToken(settings: OidcSettings, metadata: OidcMetadata, authorization: DeviceAuthorization, options: PollDeviceTokenOptions = {}): Promise<OidcTokenSet> {
  const now = options.now ?? (() => new Date());
  const sleep = options.sleep ?? defaultSleep;
  const expired = (): CmdopError =>
    new CmdopError('denied', `the code expired at ${authorization.expiresAt.toISOString()} before the sign-in was approved`, {
      hint: `${LOGIN_AGAIN} Then open the page it shows and approve the code before it expires.`,
      details: { issuer: settings.issuer },
    });
  let intervalMs = authorization.intervalMs;
  for (;;) {
    if (now().getTime() >= authorization.expiresAt.getTime()) throw expired();
    await sleep(intervalMs, options.signal);
    if (now().getTime() >= authorization.expiresAt.getTime()) throw expired();
    const response = await send(metadata.tokenEndpoint, formRequest(withAudience(settings, { grant_type: DEVICE_CODE_GRANT, device_code: authorization.deviceCode, client_id: settings.clientId })), settings, options);
    if (response.status === 200) return tokenSetFrom(settings, response, now());
    switch (response.json?.error) {
      case 'authorization_pending':
        continue;
      case 'slow_down':
        intervalMs += SLOW_DOWN_STEP_MS;
        options.onSlowDown?.(intervalMs);
        continue;
      case 'expired_token':
        throw expired();
      case 'access_denied':
        throw new CmdopError('denied', `the sign-in was declined at ${settings.issuer}`, {
          hint: `${LOGIN_AGAIN} If you did not decline it, ask the provider's administrator whether your account may use cmdop.`,
          details: { issuer: settings.issuer },
        });
      case 'invalid_grant':
        throw new CmdopError('denied', `${settings.issuer} no longer accepts this device code: it was already used, revoked or expired`, {
          hint: LOGIN_AGAIN,
          details: { issuer: settings.issuer },
        });
      default:
        throw providerRefusal(settings, 'token', response, response.status >= 500 ? 'unavailable' : 'config');
    }
  }
}

/**
 * Trades a refresh token for fresh tokens (RFC 6749 §6), for the configured audience. When the
 * provider sends no new refresh token, the result keeps `refreshToken`. CmdopError('denied') when
 * the provider no longer honours it (`invalid_grant`): the user must run `cmdop login` again.
 */
export async function refreshTokens(settings: OidcSettings, metadata: OidcMetadata, refreshToken: string, options: OidcRequestOptions = {}): Promise<OidcTokenSet> {
  const now = options.now ?? (() => new Date());
  const response = await send(metadata.tokenEndpoint, formRequest(withAudience(settings, { grant_type: 'refresh_token', refresh_token: refreshToken, client_id: settings.clientId })), settings, options);
  if (response.status === 200) return tokenSetFrom(settings, response, now(), refreshToken);
  if (response.json?.error === 'invalid_grant') {
    throw new CmdopError('denied', `${settings.issuer} no longer accepts the saved sign-in: it expired or was revoked`, {
      hint: LOGIN_AGAIN,
      details: { issuer: settings.issuer },
    });
  }
  throw providerRefusal(settings, 'refresh', response, response.status >= 500 ? 'unavailable' : 'config');
}

/**
 * Revokes a refresh token at the provider (RFC 7009), so a copy of it is worth nothing. False
 * when the provider offers no revocation endpoint; CmdopError('unavailable' or 'config') when
 * it cannot be reached or refuses.
 */
export async function revokeRefreshToken(settings: OidcSettings, metadata: OidcMetadata, refreshToken: string, options: OidcRequestOptions = {}): Promise<boolean> {
  if (metadata.revocationEndpoint === undefined) return false;
  const response = await send(metadata.revocationEndpoint, formRequest({ token: refreshToken, token_type_hint: 'refresh_token', client_id: settings.clientId }), settings, options);
  if (response.status === 200) return true;
  throw providerRefusal(settings, 'revoke', response, response.status >= 500 ? 'unavailable' : 'config');
}

/**
 * Creates the verifier of bearer access tokens for a host: it discovers the provider and fetches
 * its keys on first use, and refuses every token (fail closed) while the provider cannot be
 * reached and no keys are at hand. See `oidc-verify.ts` for the checks.
 */
export function createAccessTokenVerifier(settings: OidcSettings, options: AccessTokenVerifierOptions = {}): AccessTokenVerifier {
  return buildAccessTokenVerifier(settings, (signal) => discoverProvider(settings, { signal, timeoutMs: options.timeoutMs }), options);
}

interface ProviderResponse {
  readonly status: number;
  /** The body when it is a JSON object. */
  readonly json: Readonly<Record<string, unknown>> | undefined;
}

/** Sends one request with a timeout; a provider that cannot be reached is CmdopError('unavailable'). */
async function send(url: string, init: RequestInit, settings: OidcSettings, options: OidcRequestOptions): Promise<ProviderResponse> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const signal = options.signal === undefined ? AbortSignal.timeout(timeoutMs) : AbortSignal.any([options.signal, AbortSignal.timeout(timeoutMs)]);
  const origin = new URL(url).origin;
  try {
    const response = await fetch(url, { ...init, redirect: 'error', signal });
    const text = await response.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, json: typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>) : undefined };
  } catch (error) {
    if (options.signal?.aborted === true) {
      throw new CmdopError('unavailable', `the request to the identity provider at ${origin} was cancelled`, { cause: error, details: { issuer: settings.issuer } });
    }
    const timedOut = error instanceof Error && error.name === 'TimeoutError';
    throw new CmdopError('unavailable', timedOut ? `the identity provider at ${origin} did not answer within ${timeoutMs / 1000} s` : `could not reach the identity provider at ${origin}`, {
      cause: error,
      hint: `Check the network and the issuer (${settings.issuer}) in the configuration, then try again.`,
      details: { issuer: settings.issuer },
    });
  }
}

function formRequest(fields: Readonly<Record<string, string>>): RequestInit {
  return { method: 'POST', headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(fields).toString() };
}

function withAudience(settings: OidcSettings, fields: Record<string, string>): Record<string, string> {
  return settings.audience === undefined ? fields : { ...fields, resource: settings.audience };
}

/** An OAuth error answer as a CmdopError: the provider's error code and description, never the request. */
function providerRefusal(settings: OidcSettings, what: string, response: ProviderResponse, code: 'config' | 'denied' | 'unavailable'): CmdopError {
  const error = response.json?.error;
  const description = response.json?.error_description;
  const said = typeof error === 'string' ? ` with ${clean(error, 64)}${typeof description === 'string' ? ` (${clean(description, 200)})` : ''}` : '';
  return new CmdopError(code, `the identity provider refused the ${what} request${said} (HTTP ${response.status})`, {
    hint: code === 'unavailable' ? 'The provider is failing; try again later.' : `Check that the client "${settings.clientId}" exists at ${settings.issuer}, is public (no secret) and may use the device flow and refresh tokens.`,
    details: { issuer: settings.issuer, status: response.status, ...(typeof error === 'string' ? { error: clean(error, 64) } : {}) },
  });
}

function tokenSetFrom(settings: OidcSettings, response: ProviderResponse, now: Date, previousRefreshToken?: string): OidcTokenSet {
  const body = response.json;
  const malformed = (why: string): CmdopError =>
    new CmdopError('config', `the identity provider's token answer is unusable: ${why}`, { details: { issuer: settings.issuer } });
  if (body === undefined) throw malformed('it is not a JSON object');
  const { access_token: accessToken, token_type: tokenType, expires_in: expiresIn, refresh_token: refreshToken, id_token: idToken, scope } = body;
  if (typeof accessToken !== 'string' || accessToken === '') throw malformed('it has no access_token');
  if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') throw malformed('its token_type is not Bearer');
  if (expiresIn !== undefined && (typeof expiresIn !== 'number' || !(expiresIn > 0))) throw malformed('its expires_in is not a positive number');
  const keptRefreshToken = typeof refreshToken === 'string' && refreshToken !== '' ? refreshToken : previousRefreshToken;
  const subject = subjectOf(idToken) ?? subjectOf(accessToken);
  return Object.freeze({
    accessToken,
    expiresAt: new Date(now.getTime() + (expiresIn ?? FALLBACK_TOKEN_LIFETIME_S) * 1000),
    ...(keptRefreshToken === undefined ? {} : { refreshToken: keptRefreshToken }),
    ...(typeof idToken === 'string' ? { idToken } : {}),
    ...(subject === undefined ? {} : { subject }),
    ...(typeof scope === 'string' ? { scope } : {}),
  });
}

/** The `sub` of a JWT, unverified; undefined for anything else. */
function subjectOf(token: unknown): string | undefined {
  if (typeof token !== 'string') return undefined;
  try {
    const { sub } = decodeJwt(token);
    return typeof sub === 'string' && sub !== '' ? sub : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Checks a URL of the provider: absolute, https, or http on a loopback host only, without a
 * fragment or credentials, and for an issuer (`bare`) without a query. Returns it unchanged.
 */
function checkProviderUrl(value: string, what: string, fail: (message: string) => CmdopError, bare = false): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw fail(`${what} is not an absolute URL`);
  }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && isLoopbackHost(url.hostname))) {
    throw fail(`${what} must use https (http only for 127.0.0.1, ::1 or localhost)`);
  }
  if (value.includes('#') || (bare && value.includes('?'))) throw fail(`${what} must not have ${bare ? 'a query or ' : ''}a fragment`);
  if (url.username !== '' || url.password !== '') throw fail(`${what} must not carry a user name or password`);
  return value;
}

/** True for localhost, 127.0.0.0/8 and ::1, the hosts plain http may be used with. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === 'localhost' || hostname === '[::1]' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(hostname);
}

function isPrintable(value: string, maxLength: number): boolean {
  return value.length >= 1 && value.length <= maxLength && VSCHAR.test(value) && value.trim() === value;
}

/** Provider text for a message: printable characters only, cut to `max`. */
function clean(text: string, max: number): string {
  return text.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

async function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await delay(ms, undefined, signal === undefined ? {} : { signal });
  } catch (error) {
    throw new CmdopError('unavailable', 'waiting for the sign-in was cancelled', { cause: error });
  }
}
