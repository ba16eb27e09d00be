/**
 * Verifying OAuth access tokens issued by the workspace's OpenID provider (issue 4 §2): a JWT
 * signed with a key the provider publishes, for this workspace's audience, current, and naming a
 * subject, who becomes the principal `user:<sub>`.
 *
 * The provider's keys are fetched lazily and kept; a token signed with a key not among them makes
 * the verifier fetch the key set again, at most once per `minJwksRefreshMs`, so a provider's key
 * rotation is picked up and forged key ids cannot make it hammer the provider. Tokens already
 * verified are remembered by their SHA-256 until they expire, so a repeated bearer credential
 * costs a hash and a map lookup. Use {@link createAccessTokenVerifier} from `oidc.ts`.
 */
import { createHash } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, errors, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { CmdopError } from '../errors.js';
import type { OidcMetadata, OidcSettings } from './oidc.js';

/** The JWS algorithms accepted for access tokens: asymmetric only, never `none` or HS*. */
export const ACCESS_TOKEN_ALGORITHMS: readonly string[] = Object.freeze(['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA', 'Ed25519']);

/** Who a verified access token speaks for. */
export interface VerifiedAccessToken {
  /** The token's `sub`. */
  readonly subject: string;
  /** `user:<sub>`, the principal the gate and the audit log see. */
  readonly principal: `user:${string}`;
  /** The token's `exp`. */
  readonly expiresAt: Date;
  /** The provider that issued it. */
  readonly issuer: string;
}

/** Checks bearer access tokens; every refusal is CmdopError('denied') with `details.stage` 'authentication'. */
export interface AccessTokenVerifier {
  verify(token: string): Promise<VerifiedAccessToken>;
}

/** Options for {@link createAccessTokenVerifier}. */
export interface AccessTokenVerifierOptions {
  /** The current time, for expiry and for the key-refresh cooldown (default: the system clock). */
  readonly now?: (() => Date) | undefined;
  /** How far `exp`, `nbf` and `iat` may be off, in seconds (default 60). */
  readonly clockSkewSeconds?: number | undefined;
  /** The least time between two fetches of the provider's key set, in milliseconds (default 30 000). */
  readonly minJwksRefreshMs?: number | undefined;
  /** Fetches the key set document at `jwksUri` (default: an HTTP GET). */
  readonly fetchJwks?: ((jwksUri: string, signal: AbortSignal) => Promise<unknown>) | undefined;
  /** How long discovery plus a key-set fetch may take, in milliseconds (default 10 000). */
  readonly timeoutMs?: number | undefined;
  /** How many verified tokens to remember (default 1024). */
  readonly cacheSize?: number | undefined;
}

/** Why a token was refused, for the audit log and `--json` output. */
export type AccessTokenRefusal =
  | 'malformed'
  | 'algorithm'
  | 'signature'
  | 'unknown_key'
  | 'issuer'
  | 'audience'
  | 'expired'
  | 'not_yet_valid'
  | 'issued_in_future'
  | 'subject'
  | 'provider_unreachable';

/** Longer bearer credentials are refused before they are hashed or parsed. */
const MAX_TOKEN_LENGTH = 16 * 1024;
/** The provider's keys are fetched again once they are this old. */
const MAX_KEYS_AGE_MS = 60 * 60 * 1000;
/** Keys this old are no longer used, even while the provider cannot be reached. */
const MAX_KEYS_GRACE_MS = 24 * 60 * 60 * 1000;
/** After a failed key fetch with no keys at hand, the next attempt waits at most this long. */
const MAX_FAILURE_BACKOFF_MS = 5_000;
const LOGIN_AGAIN = 'Sign in again with `cmdop login`.';

interface KeySet {
  readonly getKey: JWTVerifyGetKey;
  readonly fetchedAt: number;
}

interface Remembered {
  readonly result: VerifiedAccessToken;
  /** Until when the verification holds: `exp` plus the skew allowance, in epoch milliseconds. */
  readonly validUntilMs: number;
}

/**
 * Builds a verifier that finds the provider's keys through `discover`. This is the engine of
 * {@link createAccessTokenVerifier}, which discovers the provider itself.
 */
export function buildAccessTokenVerifier(settings: OidcSettings, discover: (signal: AbortSignal) => Promise<OidcMetadata>, options: AccessTokenVerifierOptions = {}): AccessTokenVerifier {
  const nowMs = (): number => (options.now?.() ?? new Date()).getTime();
  const skewSeconds = options.clockSkewSeconds ?? 60;
  const minRefreshMs = options.minJwksRefreshMs ?? 30_000;
  const failureBackoffMs = Math.min(minRefreshMs, MAX_FAILURE_BACKOFF_MS);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const fetchJwks = options.fetchJwks ?? fetchJwksOverHttp;
  const cacheSize = Math.max(1, options.cacheSize ?? 1024);
  const audience = settings.audience ?? settings.clientId;
  const { issuer } = settings;
  const cache = new Map<string, Remembered>();

  let metadata: OidcMetadata | undefined;
  let keys: KeySet | undefined;
  let loading: Promise<KeySet> | undefined;
  let lastAttemptAt = Number.NEGATIVE_INFINITY;
  let lastFailure: unknown;

  const unreachable = (cause: unknown): CmdopError =>
    refusal('provider_unreachable', `the identity provider ${issuer} could not be reached for its signing keys, so the access token cannot be verified`, `Check that this host can reach ${issuer}; access tokens are refused until it can.`, cause);

  const load = (): Promise<KeySet> => {
    loading ??= (async (): Promise<KeySet> => {
      lastAttemptAt = nowMs();
      try {
        const signal = AbortSignal.timeout(timeoutMs);
        metadata ??= await discover(signal);
        const fetched: KeySet = { getKey: createLocalJWKSet(parseJwks(await fetchJwks(metadata.jwksUri, signal))), fetchedAt: lastAttemptAt };
        keys = fetched;
        lastFailure = undefined;
        return fetched;
      } catch (error) {
        lastFailure = error;
        throw unreachable(error);
      }
    })().finally(() => {
      loading = undefined;
    });
    return loading;
  };

  /**
   * The keys at hand, fetched on first use and again once they are an hour old, so a key the
   * provider withdrew stops being trusted. While the provider cannot be reached, keys up to a
   * day old still serve; older ones do not.
   */
  const currentKeys = async (): Promise<KeySet> => {
    if (keys !== undefined) {
      const age = nowMs() - keys.fetchedAt;
      if (age < MAX_KEYS_AGE_MS) return keys;
      const retry = loading === undefined && nowMs() - lastAttemptAt >= failureBackoffMs;
      if (age < MAX_KEYS_GRACE_MS) {
        // Fetched again in the background; the call goes on with the keys at hand.
        if (retry) load().catch(() => undefined);
        return keys;
      }
      if (loading !== undefined) return loading;
      if (retry) return load();
      throw unreachable(lastFailure);
    }
    if (lastFailure !== undefined && nowMs() - lastAttemptAt < failureBackoffMs) throw unreachable(lastFailure);
    return load();
  };

  /** A fresh key set for an unknown key id, or undefined while the cooldown lasts. */
  const refreshedKeys = (): Promise<KeySet> | undefined => {
    if (loading !== undefined) return loading;
    if (nowMs() - lastAttemptAt < minRefreshMs) return undefined;
    return load();
  };

  const check = async (token: string, getKey: JWTVerifyGetKey, at: number): Promise<VerifiedAccessToken> => {
    const { payload } = await jwtVerify(token, getKey, {
      algorithms: [...ACCESS_TOKEN_ALGORITHMS],
      issuer,
      audience,
      clockTolerance: skewSeconds,
      currentDate: new Date(at),
      requiredClaims: ['exp'],
    });
    return resultOf(payload, at);
  };

  const resultOf = (payload: JWTPayload, at: number): VerifiedAccessToken => {
    const { sub, iat, exp } = payload;
    if (typeof iat === 'number' && iat * 1000 > at + skewSeconds * 1000) {
      throw refusal('issued_in_future', `the access token says it was issued in the future, at ${isoOf(iat)}`, 'Check the clocks of this host and of the identity provider.');
    }
    if (typeof sub !== 'string' || sub.length < 1 || sub.length > 256 || /\p{Cc}/u.test(sub)) {
      throw refusal('subject', 'the access token names no usable subject ("sub" must be 1 to 256 characters without control characters)', 'Ask the identity provider\'s administrator to issue access tokens with a subject.');
    }
    return Object.freeze({ subject: sub, principal: `user:${sub}` as const, expiresAt: new Date((exp ?? 0) * 1000), issuer });
  };

  const verifyFully = async (token: string, at: number): Promise<VerifiedAccessToken> => {
    let alg: unknown;
    try {
      ({ alg } = decodeProtectedHeader(token));
    } catch {
      throw malformed();
    }
    if (typeof alg !== 'string' || !ACCESS_TOKEN_ALGORITHMS.includes(alg)) {
      const named = typeof alg === 'string' && /^[A-Za-z0-9+_-]{1,16}$/.test(alg) ? ` (${alg})` : '';
      throw refusal('algorithm', `the access token is signed with an algorithm cmdop does not accept${named}`, `Access tokens must be signed with one of ${ACCESS_TOKEN_ALGORITHMS.join(', ')}. ${LOGIN_AGAIN}`);
    }
    const { getKey } = await currentKeys();
    try {
      return await check(token, getKey, at);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      // A key we do not know: the provider may have rotated its keys since we fetched them.
      const fresh = refreshedKeys();
      if (fresh === undefined) throw error;
      return await check(token, (await fresh).getKey, at);
    }
  };

  const remember = (digest: string, result: VerifiedAccessToken): void => {
    if (cache.size >= cacheSize) {
      const oldest = cache.keys().next();
      if (oldest.done !== true) cache.delete(oldest.value);
    }
    cache.set(digest, { result, validUntilMs: result.expiresAt.getTime() + skewSeconds * 1000 });
  };

  return {
    async verify(token: string): Promise<VerifiedAccessToken> {
      if (token.length === 0 || token.length > MAX_TOKEN_LENGTH) throw malformed();
      const at = nowMs();
      const digest = createHash('sha256').update(token).digest('base64url');
      const known = cache.get(digest);
      if (known !== undefined) {
        if (at < known.validUntilMs) return known.result;
        cache.delete(digest);
      }
      let result: VerifiedAccessToken;
      try {
        result = await verifyFully(token, at);
      } catch (error) {
        throw refusalFor(error, settings, audience);
      }
      remember(digest, result);
      return result;
    },
  };
}

function refusal(reason: AccessTokenRefusal, message: string, hint: string, cause?: unknown): CmdopError {
  return new CmdopError('denied', message, { hint, details: { stage: 'authentication', reason }, ...(cause === undefined ? {} : { cause }) });
}

function malformed(): CmdopError {
  return refusal('malformed', 'the bearer credential is not a well-formed JWT access token', `Send the access token from \`cmdop login\`, not an ID token or a refresh token. ${LOGIN_AGAIN}`);
}

/**
 * A verification failure as a refusal. jose's errors are not kept as the cause: some carry the
 * token's claims.
 */
function refusalFor(error: unknown, settings: OidcSettings, audience: string): CmdopError {
  if (error instanceof CmdopError) return error;
  if (error instanceof errors.JWTExpired) {
    const { exp } = error.payload;
    return refusal('expired', `the access token expired${typeof exp === 'number' ? ` at ${isoOf(exp)}` : ''}`, `${LOGIN_AGAIN} (The CLI refreshes its token by itself while the sign-in lasts.)`);
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'iss':
        return refusal('issuer', `the access token was not issued by the workspace's identity provider ${settings.issuer}`, `Sign in with \`cmdop login\` at ${settings.issuer}.`);
      case 'aud':
        return refusal('audience', `the access token is not meant for this workspace: its audience does not include ${JSON.stringify(audience)}`, `Sign in with \`cmdop login\`, which asks for tokens for ${JSON.stringify(audience)}.`);
      case 'nbf':
        return refusal('not_yet_valid', 'the access token is not valid yet', 'Check the clocks of this host and of the identity provider.');
      case 'iat':
        return refusal('issued_in_future', 'the access token says it was issued in the future', 'Check the clocks of this host and of the identity provider.');
      case 'exp':
        return refusal('malformed', 'the access token has no valid expiry ("exp")', LOGIN_AGAIN);
      default:
        return malformed();
    }
  }
  if (error instanceof errors.JWKSNoMatchingKey) {
    return refusal('unknown_key', `the access token is signed with a key that ${settings.issuer} does not publish`, `Use a token issued by ${settings.issuer}. ${LOGIN_AGAIN}`);
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) {
    return refusal('signature', `the access token's signature does not verify: it was altered or not issued by ${settings.issuer}`, LOGIN_AGAIN);
  }
  if (error instanceof errors.JOSEAlgNotAllowed) {
    return refusal('algorithm', 'the access token is signed with an algorithm cmdop does not accept', LOGIN_AGAIN);
  }
  return malformed();
}

function parseJwks(document: unknown): JSONWebKeySet {
  if (typeof document !== 'object' || document === null || !Array.isArray((document as { keys?: unknown }).keys)) {
    throw new CmdopError('config', 'the identity provider\'s jwks_uri does not serve a JSON Web Key Set');
  }
  return document as JSONWebKeySet;
}

async function fetchJwksOverHttp(jwksUri: string, signal: AbortSignal): Promise<unknown> {
  const response = await fetch(jwksUri, { headers: { accept: 'application/json' }, redirect: 'error', signal });
  if (response.status !== 200) throw new CmdopError('unavailable', `${jwksUri} answered HTTP ${response.status}`);
  return response.json();
}

function isoOf(seconds: number): string {
  const date = new Date(seconds * 1000);
  return Number.isNaN(date.getTime()) ? String(seconds) : date.toISOString();
}
