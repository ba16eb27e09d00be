import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { decodeJwt, SignJWT } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CmdopError } from '../../src/errors.js';
import {
  createAccessTokenVerifier,
  discoverProvider,
  pollDeviceToken,
  refreshTokens,
  startDeviceAuthorization,
  validateOidcSettings,
  type AccessTokenRefusal,
  type AccessTokenVerifierOptions,
  type DeviceAuthorization,
  type OidcMetadata,
  type OidcSettings,
  type OidcTokenSet,
} from '../../src/identity/oidc.js';
import { startOidcProvider, type OidcProviderOptions, type TestOidcProvider } from '../helpers/oidc-provider.js';
import { refusal } from './identity-fixtures.js';

const noSleep = (): Promise<void> => Promise.resolve();
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

/** Every way a CmdopError can reach a user: message, hint, details and cause. */
function everythingSaid(error: CmdopError): string {
  return JSON.stringify({ message: error.message, hint: error.hint, details: error.details, cause: String(error.cause) });
}

function settingsOf(op: TestOidcProvider, audience: string | null = op.audience): OidcSettings {
  return validateOidcSettings({ issuer: op.issuer, clientId: op.clientId, ...(audience === null ? {} : { audience }) });
}

/** A user signs in with the device flow: start, approve at the provider, poll. */
async function login(op: TestOidcProvider, subject = 'alice'): Promise<OidcTokenSet> {
  const settings = settingsOf(op);
  const metadata = await discoverProvider(settings);
  const authorization = await startDeviceAuthorization(settings, metadata);
  await op.approve(authorization.userCode, subject);
  return pollDeviceToken(settings, metadata, authorization, { sleep: noSleep });
}

/** `verify` must refuse with CmdopError('denied') for `reason`, without repeating the token. */
async function refusedToken(verify: () => Promise<unknown>, reason: AccessTokenRefusal, token?: string): Promise<CmdopError> {
  const error = await refusal('denied', verify);
  expect(error.details).toEqual({ stage: 'authentication', reason });
  if (token !== undefined) {
    expect(everythingSaid(error)).not.toContain(token);
    const signature = token.split('.')[2];
    if (signature !== undefined && signature !== '') expect(everythingSaid(error)).not.toContain(signature);
  }
  return error;
}

/** An http://127.0.0.1 URL where nothing listens. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

/** A server that answers every request with `status` and `body`: a broken provider. */
async function serveJson(status: number, body: (issuer: string) => unknown): Promise<{ issuer: string; server: Server }> {
  const server = createServer((_req, res) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body(issuer)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { issuer, server };
}

let op: TestOidcProvider;
let settings: OidcSettings;
let metadata: OidcMetadata;
const started: TestOidcProvider[] = [];
const start = async (options?: OidcProviderOptions): Promise<TestOidcProvider> => {
  const provider = await startOidcProvider(options);
  started.push(provider);
  return provider;
};

beforeAll(async () => {
  op = await start();
  settings = settingsOf(op);
  metadata = await discoverProvider(settings);
});
afterAll(async () => {
  await Promise.all(started.map((each) => each.close()));
});

describe('validateOidcSettings', () => {
  it.each([
    ['https://login.example.com', undefined],
    ['https://login.example.com/realms/dev/', 'api://mesh'],
    ['http://127.0.0.1:8080', 'https://mesh.example.com'],
    ['http://127.9.9.9', undefined],
    ['http://[::1]:9000/oidc', undefined],
    ['http://localhost:3000', undefined],
  ])('accepts the issuer %s', (issuer, audience) => {
    const checked = validateOidcSettings({ issuer, clientId: 'cmdop-cli', audience });
    expect(checked).toEqual({ issuer, clientId: 'cmdop-cli', ...(audience === undefined ? {} : { audience }) });
    expect(Object.isFrozen(checked)).toBe(true);
  });

  it.each([
    [{ issuer: 'login.example.com', clientId: 'cmdop' }, 'not an absolute URL'],
    [{ issuer: '/realms/dev', clientId: 'cmdop' }, 'not an absolute URL'],
    [{ issuer: 'http://login.example.com', clientId: 'cmdop' }, 'must use https'],
    [{ issuer: 'http://10.0.0.1', clientId: 'cmdop' }, 'must use https'],
    [{ issuer: 'ftp://login.example.com', clientId: 'cmdop' }, 'must use https'],
    [{ issuer: 'https://login.example.com/?tenant=a', clientId: 'cmdop' }, 'query'],
    [{ issuer: 'https://login.example.com/#x', clientId: 'cmdop' }, 'fragment'],
    [{ issuer: 'https://user:pw@login.example.com', clientId: 'cmdop' }, 'user name or password'],
    [{ issuer: 'https://login.example.com', clientId: '' }, 'client id'],
    [{ issuer: 'https://login.example.com', clientId: 'x'.repeat(257) }, 'client id'],
    [{ issuer: 'https://login.example.com', clientId: 'cmdop\n' }, 'client id'],
    [{ issuer: 'https://login.example.com', clientId: ' cmdop' }, 'client id'],
    [{ issuer: 'https://login.example.com', clientId: 'cmdop', audience: '' }, 'audience'],
    [{ issuer: 'https://login.example.com', clientId: 'cmdop', audience: 'a'.repeat(513) }, 'audience'],
    [{ issuer: 'https://login.example.com', clientId: 'cmdop', audience: 'api\u0000' }, 'audience'],
  ])('refuses %j (%s)', async (input, said) => {
    const error = await refusal('invalid_input', () => validateOidcSettings(input));
    expect(error.message).toContain(said);
    expect(error.hint).toBeDefined();
  });
});

describe('discoverProvider', () => {
  it("reads the provider's endpoints from its discovery document", () => {
    expect(metadata).toEqual({
      issuer: op.issuer,
      tokenEndpoint: `${op.issuer}/token`,
      jwksUri: `${op.issuer}/jwks`,
      deviceAuthorizationEndpoint: `${op.issuer}/device/auth`,
      revocationEndpoint: `${op.issuer}/token/revocation`,
    });
  });

  it('refuses a provider that names another issuer, and says which one to configure', async () => {
    const error = await refusal('config', () => discoverProvider(validateOidcSettings({ issuer: `${op.issuer}/`, clientId: op.clientId })));
    expect(error.message).toContain(`calls itself "${op.issuer}"`);
    expect(error.hint).toContain(`exactly "${op.issuer}"`);
  });

  it('is unavailable when nothing answers at the issuer', async () => {
    const issuer = await closedPortUrl();
    const error = await refusal('unavailable', () => discoverProvider(validateOidcSettings({ issuer, clientId: 'cmdop' })));
    expect(error.message).toBe(`could not reach the identity provider at ${issuer}`);
  });

  it.each([
    ['an HTTP error', 404, (issuer: string) => ({ issuer })],
    ['no jwks_uri', 200, (issuer: string) => ({ issuer, token_endpoint: `${issuer}/token` })],
    ['no token endpoint', 200, (issuer: string) => ({ issuer, jwks_uri: `${issuer}/jwks` })],
    ['a plain-http endpoint elsewhere', 200, (issuer: string) => ({ issuer, token_endpoint: 'http://login.example.com/token', jwks_uri: `${issuer}/jwks` })],
    ['not an object', 200, () => ['issuer']],
  ])('is a configuration error for a document with %s', async (_what, status, body) => {
    const broken = await serveJson(status, body);
    try {
      await refusal('config', () => discoverProvider(validateOidcSettings({ issuer: broken.issuer, clientId: 'cmdop' })));
    } finally {
      broken.server.close();
    }
  });
});

describe('device flow', () => {
  it('signs a user in: the access token verifies as user:<subject> and a refresh token comes with it', async () => {
    const before = Date.now();
    const authorization = await startDeviceAuthorization(settings, metadata);
    expect(authorization.userCode).toMatch(/^[A-Z]{4}-[A-Z]{4}$/);
    expect(authorization.verificationUri).toBe(`${op.issuer}/device`);
    expect(authorization.verificationUriComplete).toBe(`${op.issuer}/device?user_code=${authorization.userCode}`);
    expect(authorization.intervalMs).toBe(5000);
    expect(authorization.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 600_000);

    await op.approve(authorization.userCode, 'alice@example.com');
    const slept: number[] = [];
    const tokens = await pollDeviceToken(settings, metadata, authorization, { sleep: (ms) => Promise.resolve(void slept.push(ms)) });
    expect(slept).toEqual([5000]);
    expect(tokens.refreshToken).toEqual(expect.any(String));
    expect(tokens.idToken).toEqual(expect.any(String));
    expect(tokens.subject).toBe('alice@example.com');
    expect(tokens.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 600_000);
    expect(tokens.expiresAt.getTime()).toBeLessThanOrEqual(Date.now() + 600_000);
    expect(decodeJwt(tokens.accessToken).aud).toBe(op.audience);

    const verified = await createAccessTokenVerifier(settings).verify(tokens.accessToken);
    expect(verified).toEqual({ subject: 'alice@example.com', principal: 'user:alice@example.com', issuer: op.issuer, expiresAt: new Date(decodeJwt(tokens.accessToken).exp! * 1000) });
  });

  it('keeps polling while the authorization is pending, and succeeds once the user approves', async () => {
    const authorization = await startDeviceAuthorization(settings, metadata);
    const slept: number[] = [];
    const sleep = async (ms: number): Promise<void> => {
      slept.push(ms);
      // The user approves while cmdop waits for the second time: the first poll was pending.
      if (slept.length === 2) await op.approve(authorization.userCode, 'bob');
    };
    const tokens = await pollDeviceToken(settings, metadata, authorization, { sleep });
    expect(slept).toEqual([5000, 5000]);
    expect((await createAccessTokenVerifier(settings).verify(tokens.accessToken)).principal).toBe('user:bob');
  });

  it('waits 5 s longer after slow_down, and keeps the longer interval', async () => {
    const slow = await start({ minPollIntervalMs: 300 });
    const slowSettings = settingsOf(slow);
    const slowMetadata = await discoverProvider(slowSettings);
    const authorization = await startDeviceAuthorization(slowSettings, slowMetadata);
    const slept: number[] = [];
    const slowDowns: number[] = [];
    const sleep = async (ms: number): Promise<void> => {
      slept.push(ms);
      // 1: first poll, pending. 2: polled at once, slow_down. 3: waits, pending. 4: approved, waits, success.
      if (slept.length === 4) await slow.approve(authorization.userCode, 'carol');
      if (slept.length >= 3) await new Promise((resolve) => setTimeout(resolve, 350));
    };
    const tokens = await pollDeviceToken(slowSettings, slowMetadata, authorization, { sleep, onSlowDown: (ms) => slowDowns.push(ms) });
    expect(slowDowns).toEqual([10_000]);
    expect(slept).toEqual([5000, 5000, 10_000, 10_000]);
    expect(tokens.subject).toBe('carol');
  });

  it('is refused when the user aborts at the provider', async () => {
    const authorization = await startDeviceAuthorization(settings, metadata);
    await op.deny(authorization.userCode);
    const error = await refusal('denied', () => pollDeviceToken(settings, metadata, authorization, { sleep: noSleep }));
    expect(error.message).toBe(`the sign-in was declined at ${op.issuer}`);
  });

  it('refuses a device code that already yielded tokens, and the provider then revokes that sign-in', async () => {
    const authorization = await startDeviceAuthorization(settings, metadata);
    await op.approve(authorization.userCode, 'dave');
    const tokens = await pollDeviceToken(settings, metadata, authorization, { sleep: noSleep });

    const replay = await refusal('denied', () => pollDeviceToken(settings, metadata, authorization, { sleep: noSleep }));
    expect(replay.message).toContain('no longer accepts this device code');
    expect(everythingSaid(replay)).not.toContain(authorization.deviceCode);
    // oidc-provider revokes the whole grant when a code is replayed (RFC 6749 §4.1.2).
    const refresh = await refusal('denied', () => refreshTokens(settings, metadata, tokens.refreshToken!));
    expect(refresh.hint).toBe('Run `cmdop login` again.');
  });

  it('stops waiting when the code expires, without asking the provider again', async () => {
    const authorization = await startDeviceAuthorization(settings, metadata);
    let clock = Date.now();
    const error = await refusal('denied', () =>
      pollDeviceToken(settings, metadata, authorization, {
        now: () => new Date(clock),
        sleep: () => Promise.resolve(void (clock = authorization.expiresAt.getTime())),
      }),
    );
    expect(error.message).toBe(`the code expired at ${authorization.expiresAt.toISOString()} before the sign-in was approved`);
  });

  it("is refused when the provider says the code expired (expired_token)", async () => {
    const brief = await start({ deviceCodeTtlSeconds: 1 });
    const briefSettings = settingsOf(brief);
    const briefMetadata = await discoverProvider(briefSettings);
    const authorization = await startDeviceAuthorization(briefSettings, briefMetadata);
    // cmdop's clock lags: only the provider knows the code has expired.
    const startedAt = new Date();
    const error = await refusal('denied', () =>
      pollDeviceToken(briefSettings, briefMetadata, authorization, { now: () => startedAt, sleep: () => new Promise((resolve) => setTimeout(resolve, 1100)) }),
    );
    expect(error.message).toContain('the code expired');
  });

  it('stops when the caller cancels the wait', async () => {
    const authorization = await startDeviceAuthorization(settings, metadata);
    const controller = new AbortController();
    setTimeout(() => {
      controller.abort();
    }, 20);
    const error = await refusal('unavailable', () => pollDeviceToken(settings, metadata, authorization, { signal: controller.signal }));
    expect(error.message).toBe('waiting for the sign-in was cancelled');
  });

  it('is a configuration error when the provider does not know the client', async () => {
    const stranger = validateOidcSettings({ issuer: op.issuer, clientId: 'not-registered', audience: op.audience });
    const error = await refusal('config', () => startDeviceAuthorization(stranger, metadata));
    expect(error.message).toContain('invalid_client');
    expect(error.hint).toContain('"not-registered"');
  });

  it('is a configuration error when the provider has no device flow', async () => {
    await refusal('config', () => startDeviceAuthorization(settings, { ...metadata, deviceAuthorizationEndpoint: undefined }));
  });
});

describe('refreshTokens', () => {
  it('returns a fresh access token for the same user, and a new refresh token (rotation)', async () => {
    const tokens = await login(op, 'erin');
    const refreshed = await refreshTokens(settings, metadata, tokens.refreshToken!);
    expect(refreshed.accessToken).not.toBe(tokens.accessToken);
    expect(refreshed.refreshToken).toEqual(expect.any(String));
    expect(refreshed.refreshToken).not.toBe(tokens.refreshToken);
    expect((await createAccessTokenVerifier(settings).verify(refreshed.accessToken)).principal).toBe('user:erin');
    // The rotated-out refresh token is spent.
    await refusal('denied', () => refreshTokens(settings, metadata, tokens.refreshToken!));
  });

  it('keeps the refresh token when the provider does not rotate it', async () => {
    const steady = await start({ rotateRefreshToken: false });
    const tokens = await login(steady, 'frank');
    const refreshed = await refreshTokens(settingsOf(steady), await discoverProvider(settingsOf(steady)), tokens.refreshToken!);
    expect(refreshed.refreshToken).toBe(tokens.refreshToken);
  });

  it('is refused, without quoting it, for a refresh token the provider does not know', async () => {
    const unknown = 'not-a-refresh-token-that-exists-anywhere';
    const error = await refusal('denied', () => refreshTokens(settings, metadata, unknown));
    expect(error.message).toContain('no longer accepts the saved sign-in');
    expect(everythingSaid(error)).not.toContain(unknown);
  });
});

describe('createAccessTokenVerifier', () => {
  const verifierFor = (options: AccessTokenVerifierOptions = {}, audience: string | null = op.audience): ReturnType<typeof createAccessTokenVerifier> =>
    createAccessTokenVerifier(settingsOf(op, audience), options);

  it('accepts a token within the clock-skew allowance after it expires, and refuses it after', async () => {
    const token = await op.signToken();
    const exp = decodeJwt(token).exp! * 1000;
    await expect(verifierFor({ now: () => new Date(exp + 59_000) }).verify(token)).resolves.toMatchObject({ principal: 'user:alice' });
    const error = await refusedToken(() => verifierFor({ now: () => new Date(exp + 61_000) }).verify(token), 'expired', token);
    expect(error.message).toBe(`the access token expired at ${new Date(exp).toISOString()}`);
    await refusedToken(() => verifierFor({ now: () => new Date(exp + 1000), clockSkewSeconds: 0 }).verify(token), 'expired', token);
  });

  it('does not remember a verified token past its expiry', async () => {
    const token = await op.signToken();
    let clock = Date.now();
    const verifier = verifierFor({ now: () => new Date(clock) });
    await verifier.verify(token);
    clock = decodeJwt(token).exp! * 1000 + 61_000;
    await refusedToken(() => verifier.verify(token), 'expired', token);
  });

  it('answers a token it verified before from its cache: the same result, no key fetch', async () => {
    let fetches = 0;
    const verifier = verifierFor({
      fetchJwks: async (uri, signal) => {
        fetches += 1;
        return (await fetch(uri, { signal })).json();
      },
    });
    const token = await op.signToken({ sub: 'grace' });
    const first = await verifier.verify(token);
    const again = await verifier.verify(token);
    expect(again).toBe(first);
    expect(again.subject).toBe('grace');
    expect(fetches).toBe(1);
  });

  it('remembers a bounded number of tokens, the oldest forgotten first', async () => {
    const verifier = verifierFor({ cacheSize: 2 });
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => op.signToken({ sub })));
    const first = await verifier.verify(a!);
    await verifier.verify(b!);
    expect(await verifier.verify(a!)).toBe(first);
    await verifier.verify(c!);
    const again = await verifier.verify(a!);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it('refuses a token whose payload was altered, and one whose signature was', async () => {
    const token = await op.signToken({ sub: 'alice' });
    const [header = '', payload = '', signature = ''] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>;
    const altered = `${header}.${b64({ ...claims, sub: 'mallory' })}.${signature}`;
    await refusedToken(() => verifierFor().verify(altered), 'signature', altered);
    const flipped = `${header}.${payload}.${signature.startsWith('A') ? 'B' : 'A'}${signature.slice(1)}`;
    await refusedToken(() => verifierFor().verify(flipped), 'signature', flipped);
  });

  it('refuses a token for another audience', async () => {
    const token = await op.signToken({ aud: ['https://other-api.example.com'] });
    const error = await refusedToken(() => verifierFor().verify(token), 'audience', token);
    expect(error.message).toContain(`"${op.audience}"`);
  });

  it('without an audience configured, wants the client id as the audience', async () => {
    await expect(verifierFor({}, null).verify(await op.signToken({ aud: op.clientId }))).resolves.toMatchObject({ principal: 'user:alice' });
    await refusedToken(async () => verifierFor({}, null).verify(await op.signToken()), 'audience');
  });

  it('refuses a token from another issuer, even signed with a key the provider publishes', async () => {
    const token = await op.signToken({ iss: 'https://evil.example.com' });
    await refusedToken(() => verifierFor().verify(token), 'issuer', token);
  });

  it('refuses a token signed with a key the provider does not publish', async () => {
    const token = await op.signToken({}, { signer: 'stranger' });
    const error = await refusedToken(() => verifierFor().verify(token), 'unknown_key', token);
    expect(error.message).toBe(`the access token is signed with a key that ${op.issuer} does not publish`);
  });

  it.each([
    ['none', (claims: Record<string, unknown>) => Promise.resolve(`${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`)],
    ['HS256', (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(new TextEncoder().encode('a secret shared by nobody at all!'))],
    ['HS512', (claims: Record<string, unknown>) => new SignJWT(claims).setProtectedHeader({ alg: 'HS512', kid: 'x' }).sign(new TextEncoder().encode('a'.repeat(64)))],
  ])('refuses a token with alg %s', async (alg, sign) => {
    const token = await sign(decodeJwt(await op.signToken()));
    const error = await refusedToken(() => verifierFor().verify(token), 'algorithm', token);
    expect(error.message).toBe(`the access token is signed with an algorithm cmdop does not accept (${alg})`);
  });

  it.each([
    ['no sub', { sub: undefined }, 'subject'],
    ['an empty sub', { sub: '' }, 'subject'],
    ['a sub of 257 characters', { sub: 'a'.repeat(257) }, 'subject'],
    ['a sub with a control character', { sub: 'alice\nroot' }, 'subject'],
    ['no exp', { exp: undefined }, 'malformed'],
    ['an nbf in 5 minutes', { nbf: Math.floor(Date.now() / 1000) + 300 }, 'not_yet_valid'],
    ['an iat in 5 minutes', { iat: Math.floor(Date.now() / 1000) + 300 }, 'issued_in_future'],
  ] as const)('refuses a token with %s', async (_what, claims, reason) => {
    const token = await op.signToken(claims);
    await refusedToken(() => verifierFor().verify(token), reason, token);
  });

  it('accepts an nbf and an iat within the clock-skew allowance', async () => {
    const soon = Math.floor(Date.now() / 1000) + 30;
    await expect(verifierFor().verify(await op.signToken({ nbf: soon, iat: soon }))).resolves.toMatchObject({ principal: 'user:alice' });
  });

  it.each([
    ['an empty string', ''],
    ['a random word', 'hello'],
    ['an API key', 'cmdop-key.eyJ2IjoxfQ.c2VjcmV0'],
    ['two segments', 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhIn0'],
    ['a 17 KiB blob', 'a'.repeat(17 * 1024)],
  ])('refuses %s as malformed', async (_what, token) => {
    await refusedToken(() => verifierFor().verify(token), 'malformed');
  });

  it('fails closed when the provider cannot be reached for its keys', async () => {
    const issuer = await closedPortUrl();
    const verifier = createAccessTokenVerifier(validateOidcSettings({ issuer, clientId: op.clientId, audience: op.audience }));
    const token = await op.signToken({ iss: issuer });
    const error = await refusedToken(() => verifier.verify(token), 'provider_unreachable', token);
    expect(error.message).toBe(`the identity provider ${issuer} could not be reached for its signing keys, so the access token cannot be verified`);
  });

  it('fetches the keys once for many first tokens at the same time', async () => {
    let fetches = 0;
    const verifier = verifierFor({
      fetchJwks: async (uri, signal) => {
        fetches += 1;
        return (await fetch(uri, { signal })).json();
      },
    });
    const tokens = await Promise.all(['a', 'b', 'c', 'd', 'e'].map((sub) => op.signToken({ sub })));
    const verified = await Promise.all(tokens.map((token) => verifier.verify(token)));
    expect(verified.map((each) => each.principal)).toEqual(['user:a', 'user:b', 'user:c', 'user:d', 'user:e']);
    expect(fetches).toBe(1);
  });

  it("picks up the provider's new keys on an unknown key id, at most once per cooldown", async () => {
    const rotating = await start();
    let clock = Date.now();
    const verifier = createAccessTokenVerifier(settingsOf(rotating), { now: () => new Date(clock), minJwksRefreshMs: 30_000 });
    const before = await login(rotating, 'heidi');
    await verifier.verify(before.accessToken);
    expect(rotating.jwksRequests).toBe(1);

    await rotating.rotateKeys();
    const after = await login(rotating, 'ivan');
    // Within the cooldown of the first fetch, the new key is not looked for...
    await refusedToken(() => verifier.verify(after.accessToken), 'unknown_key', after.accessToken);
    expect(rotating.jwksRequests).toBe(1);
    // ...after it, it is, once.
    clock += 30_000;
    expect((await verifier.verify(after.accessToken)).principal).toBe('user:ivan');
    expect(rotating.jwksRequests).toBe(2);
    // Tokens signed with the old key verified before are still remembered.
    expect((await verifier.verify(before.accessToken)).principal).toBe('user:heidi');

    // A key id nobody publishes: no new fetch within the cooldown...
    const forged = await rotating.signToken({}, { signer: 'stranger' });
    await refusedToken(() => verifier.verify(forged), 'unknown_key', forged);
    await refusedToken(() => verifier.verify(forged), 'unknown_key', forged);
    expect(rotating.jwksRequests).toBe(2);
    // ...and one after it.
    clock += 30_000;
    await refusedToken(() => verifier.verify(forged), 'unknown_key', forged);
    expect(rotating.jwksRequests).toBe(3);
  });
});

describe('what the library asks the provider for', () => {
  it('sends no client secret and asks for the audience as the resource', async () => {
    const seen: string[] = [];
    const spy = await serveJson(200, (issuer) => ({ device_code: 'dc', user_code: 'ABCD-EFGH', verification_uri: `${issuer}/device`, expires_in: 60, interval: 2 }));
    spy.server.prependListener('request', (req) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => seen.push(body));
    });
    try {
      const spySettings = validateOidcSettings({ issuer: spy.issuer, clientId: 'cmdop-cli', audience: 'api://mesh' });
      const authorization: DeviceAuthorization = await startDeviceAuthorization(spySettings, { issuer: spy.issuer, tokenEndpoint: `${spy.issuer}/token`, jwksUri: `${spy.issuer}/jwks`, deviceAuthorizationEndpoint: `${spy.issuer}/device/auth` });
      expect(authorization.intervalMs).toBe(2000);
      expect(authorization.verificationUriComplete).toBeUndefined();
    } finally {
      spy.server.close();
    }
    expect(Object.fromEntries(new URLSearchParams(seen[0]))).toEqual({ client_id: 'cmdop-cli', scope: 'openid offline_access', resource: 'api://mesh' });
  });
});
