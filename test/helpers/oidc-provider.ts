/**
 * A real OpenID provider for tests: `oidc-provider` (the certified Node.js implementation) on
 * http://127.0.0.1:<free port>, with one public client that may use the device flow and refresh
 * tokens, and access tokens issued as JWTs for one audience (resource indicators).
 *
 * `approve(userCode, subject)` does what a person at a browser does: opens the verification page,
 * enters the code, confirms it, signs in on the login page as `subject` and lands on the success
 * page. The login page is the provider's interaction route, answered with the provider's own
 * interaction API.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type JWK, type JWTPayload } from 'jose';

/** Options for {@link startOidcProvider}. */
export interface OidcProviderOptions {
  /** How long access tokens live, in seconds (default 600). */
  readonly accessTokenTtlSeconds?: number;
  /** Whether a refresh hands out a new refresh token (default: oidc-provider's: yes for public clients). */
  readonly rotateRefreshToken?: boolean;
  /** The private signing keys, the first one signing (default: one fresh RS256 key). */
  readonly jwks?: readonly JWK[];
  /** How long device codes live, in seconds (default 600). */
  readonly deviceCodeTtlSeconds?: number;
  /** The audience (resource indicator) access tokens are issued for (default https://mesh.cmdop.test). */
  readonly audience?: string;
  /** The public client's id (default cmdop-cli). */
  readonly clientId?: string;
  /**
   * When set, a device-code poll that comes sooner than this after the previous poll of the same
   * code is answered `slow_down` (oidc-provider 9 never sends it by itself).
   */
  readonly minPollIntervalMs?: number;
}

/** A running provider. */
export interface TestOidcProvider {
  readonly issuer: string;
  readonly clientId: string;
  readonly audience: string;
  /** How many times its JWKS document was fetched. */
  readonly jwksRequests: number;
  /** How many requests reached its token endpoint (device-code polls and refreshes alike). */
  readonly tokenRequests: number;
  /** The user's side of the device flow: enter `userCode`, confirm, sign in as `subject`. */
  approve(userCode: string, subject: string): Promise<void>;
  /** The user enters `userCode` and presses Abort on the confirmation page. */
  deny(userCode: string): Promise<void>;
  /** Replaces the provider's signing keys (default: one fresh key); the issuer and its state stay. */
  rotateKeys(jwks?: readonly JWK[]): Promise<void>;
  /**
   * Signs a token shaped like the provider's access tokens: iss, aud, sub 'alice', client_id,
   * iat now, exp in the access-token lifetime, overridden by `claims` (undefined removes a claim).
   * With `signer: 'stranger'` it is signed by a key the provider does not publish.
   */
  signToken(claims?: Readonly<Record<string, unknown>>, options?: { readonly signer?: 'provider' | 'stranger' }): Promise<string>;
  close(): Promise<void>;
}

/** A private RS256 signing key in JWK form, with a key id. */
export async function createSigningKey(kid: string = randomUUID()): Promise<JWK> {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  return { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
}

const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** Starts a provider on a free loopback port. */
export async function startOidcProvider(options: OidcProviderOptions = {}): Promise<TestOidcProvider> {
  const { default: Provider, errors } = await loadOidcProvider();
  const clientId = options.clientId ?? 'cmdop-cli';
  const audience = options.audience ?? 'https://mesh.cmdop.test';
  const accessTokenTtl = options.accessTokenTtlSeconds ?? 600;
  const store = new Map<string, Stored>();
  const stranger = await createSigningKey('stranger');
  let keys = options.jwks ?? [await createSigningKey()];
  let jwksRequests = 0;
  let tokenRequests = 0;

  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const build = (signingKeys: readonly JWK[]): ProviderInstance => {
    const alg = signingKeys[0]?.alg ?? 'RS256';
    const provider = new Provider(issuer, {
      adapter: memoryAdapter(store),
      clients: [{ client_id: clientId, token_endpoint_auth_method: 'none', grant_types: [DEVICE_CODE_GRANT, 'refresh_token'], response_types: [], redirect_uris: [] }],
      jwks: { keys: signingKeys },
      cookies: { keys: [randomBytes(32).toString('hex')] },
      scopes: ['openid', 'offline_access'],
      features: {
        devInteractions: { enabled: false },
        // RFC 7009, for `cmdop logout`.
        revocation: { enabled: true },
        deviceFlow: {
          enabled: true,
          userCodeInputSource: (ctx: KoaContext, form: string, _out: unknown, error?: Error) => {
            ctx.body = page(`${error === undefined ? '' : `<p class="error">${error.name}</p>`}${form}`);
          },
          userCodeConfirmSource: (ctx: KoaContext, form: string) => {
            ctx.body = page(`<p>Is this your code?</p>${form}`);
          },
          successSource: (ctx: KoaContext) => {
            ctx.body = page('<p>signed in</p>');
          },
        },
        resourceIndicators: {
          enabled: true,
          defaultResource: () => audience,
          useGrantedResource: () => true,
          getResourceServerInfo: (_ctx: unknown, resource: string) => {
            if (resource !== audience) throw new errors.InvalidTarget();
            return { scope: 'mesh', audience, accessTokenTTL: accessTokenTtl, accessTokenFormat: 'jwt', jwt: { sign: { alg } } };
          },
        },
      },
      // oidc-provider issues refresh tokens for offline_access only; this client always gets one.
      issueRefreshToken: () => true,
      ...(options.rotateRefreshToken === undefined ? {} : { rotateRefreshToken: () => options.rotateRefreshToken }),
      findAccount: (_ctx: unknown, sub: string) => ({ accountId: sub, claims: () => ({ sub }) }),
      interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
      renderError: (ctx: KoaContext, out: Record<string, unknown>) => {
        ctx.body = page(`<p class="error">${JSON.stringify(out)}</p>`);
      },
      ttl: { AccessToken: accessTokenTtl, DeviceCode: options.deviceCodeTtlSeconds ?? 600, RefreshToken: 86_400, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 86_400 },
    });
    if (options.minPollIntervalMs !== undefined) provider.use(slowDown(options.minPollIntervalMs));
    return provider;
  };

  let provider = build(keys);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const path = new URL(req.url ?? '/', issuer).pathname;
    if (path === '/jwks') jwksRequests += 1;
    if (path === '/token') tokenRequests += 1;
    const current = provider;
    if (path.startsWith('/interaction/')) {
      loginPage(current, audience, req, res).catch((error: unknown) => {
        res.statusCode = 500;
        res.end(String(error));
      });
      return;
    }
    void current.callback()(req, res);
  });

  return {
    issuer,
    clientId,
    audience,
    get tokenRequests() {
      return tokenRequests;
    },
    get jwksRequests() {
      return jwksRequests;
    },
    async approve(userCode, subject) {
      const browser = createBrowser(issuer);
      const xsrf = await browser.codeForm();
      await browser.expectPage('/device', { xsrf, user_code: userCode }, 'op.deviceConfirmForm');
      const login = await browser.redirect('/device', { xsrf, user_code: userCode, confirm: 'yes' });
      const resume = await browser.redirect(login, { subject });
      const done = await browser.get(resume);
      if (!done.includes('signed in')) throw new Error(`approving ${userCode} did not reach the success page: ${done}`);
    },
    async deny(userCode) {
      const browser = createBrowser(issuer);
      const xsrf = await browser.codeForm();
      await browser.expectPage('/device', { xsrf, user_code: userCode }, 'op.deviceConfirmForm');
      await browser.expectPage('/device', { xsrf, user_code: userCode, abort: 'yes' }, 'AbortedError');
    },
    async rotateKeys(jwks) {
      keys = jwks ?? [await createSigningKey()];
      provider = build(keys);
    },
    async signToken(claims = {}, { signer = 'provider' } = {}) {
      const key = signer === 'stranger' ? stranger : keys[0];
      if (key === undefined) throw new Error('the provider has no signing key');
      const now = Math.floor(Date.now() / 1000);
      const payload: JWTPayload = { jti: randomUUID(), iss: issuer, aud: audience, sub: 'alice', client_id: clientId, iat: now, exp: now + accessTokenTtl };
      for (const [name, value] of Object.entries(claims)) {
        if (value === undefined) Reflect.deleteProperty(payload, name);
        else payload[name] = value;
      }
      const alg = key.alg ?? 'RS256';
      return new SignJWT(payload).setProtectedHeader({ alg, typ: 'at+jwt', ...(key.kid === undefined ? {} : { kid: key.kid }) }).sign(key);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve, reject) => {
        server.close((error) => {
          if (error === undefined) resolve();
          else reject(error);
        });
      });
    },
  };
}

/** The login page at the provider's interaction URL: GET shows it, POST `subject=...` signs in and consents. */
async function loginPage(provider: ProviderInstance, audience: string, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (req.method !== 'POST') {
    res.setHeader('content-type', 'text/html');
    res.end(page('<form method="post"><input name="subject"><button>Sign in</button></form>'));
    return;
  }
  const subject = new URLSearchParams(await readBody(req)).get('subject');
  if (subject === null || subject === '') throw new Error('the login form needs a subject');
  const interaction = await provider.interactionDetails(req, res);
  const { client_id: clientId, scope, resource } = interaction.params;
  if (typeof clientId !== 'string') throw new Error('the interaction has no client');
  // The consent a person would give on a consent page: what the client asked for.
  const grant = new provider.Grant({ accountId: subject, clientId });
  if (typeof scope === 'string') grant.addOIDCScope(scope);
  grant.addResourceScope(typeof resource === 'string' ? resource : audience, 'mesh');
  const grantId = await grant.save();
  await provider.interactionFinished(req, res, { login: { accountId: subject }, consent: { grantId } }, { mergeWithLastSubmission: false });
}

/** Answers `slow_down` instead of `authorization_pending` when a device code is polled too soon. */
function slowDown(minIntervalMs: number): KoaMiddleware {
  const lastPoll = new Map<string, number>();
  return async (ctx, next) => {
    await next();
    const deviceCode = ctx.oidc?.params?.device_code;
    if (ctx.path !== '/token' || typeof deviceCode !== 'string') return;
    const now = Date.now();
    const previous = lastPoll.get(deviceCode);
    lastPoll.set(deviceCode, now);
    const body = ctx.body as { error?: unknown } | undefined;
    if (previous !== undefined && now - previous < minIntervalMs && body?.error === 'authorization_pending') {
      ctx.body = { error: 'slow_down', error_description: 'you are polling too quickly and should back off at a reasonable rate' };
    }
  };
}

/** A browser with a cookie jar; it follows no redirects by itself, so each step can be checked. */
function createBrowser(issuer: string) {
  const jar = new Map<string, string>();
  const request = async (path: string, form?: Readonly<Record<string, string>>): Promise<Response> => {
    const response = await fetch(new URL(path, issuer), {
      method: form === undefined ? 'GET' : 'POST',
      redirect: 'manual',
      headers: { cookie: [...jar].map(([name, value]) => `${name}=${value}`).join('; '), ...(form === undefined ? {} : { 'content-type': 'application/x-www-form-urlencoded' }) },
      ...(form === undefined ? {} : { body: new URLSearchParams(form).toString() }),
    });
    for (const line of response.headers.getSetCookie()) {
      const [pair = '', ...attributes] = line.split(';');
      const at = pair.indexOf('=');
      const name = pair.slice(0, at).trim();
      const expired = attributes.some((each) => /^\s*expires=Thu, 01 Jan 1970/i.test(each));
      if (expired) jar.delete(name);
      else jar.set(name, pair.slice(at + 1));
    }
    return response;
  };
  const text = async (response: Response, path: string): Promise<string> => {
    const body = await response.text();
    if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${body}`);
    return body;
  };
  return {
    async get(path: string): Promise<string> {
      return text(await request(path), path);
    },
    /** Opens the code entry page and returns its form's anti-forgery token. */
    async codeForm(): Promise<string> {
      const body = text(await request('/device'), '/device');
      const xsrf = /name="xsrf" value="([^"]+)"/.exec(await body)?.[1];
      if (xsrf === undefined) throw new Error('the code entry page has no xsrf field');
      return xsrf;
    },
    async expectPage(path: string, form: Readonly<Record<string, string>>, expected: string): Promise<void> {
      const response = await request(path, form);
      const body = await response.text();
      if (!body.includes(expected)) throw new Error(`${path} answered ${response.status} without "${expected}": ${body}`);
    },
    /** Posts `form` to `path`, which must redirect; returns where to. */
    async redirect(path: string, form: Readonly<Record<string, string>>): Promise<string> {
      const response = await request(path, form);
      const location = response.headers.get('location');
      if (response.status !== 303 && response.status !== 302) throw new Error(`${path} answered ${response.status} instead of a redirect: ${await response.text()}`);
      if (location === null) throw new Error(`${path} redirected nowhere`);
      return location;
    },
  };
}

function page(body: string): string {
  return `<!DOCTYPE html><html><body>${body}</body></html>`;
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

interface Stored {
  readonly payload: Record<string, unknown>;
  readonly expiresAt: number;
}

/** oidc-provider's storage interface over one map, shared by every provider instance of a helper. */
function memoryAdapter(store: Map<string, Stored>) {
  return class MemoryAdapter {
    readonly #model: string;
    constructor(model: string) {
      this.#model = model;
    }
    #key(id: string): string {
      return `${this.#model}:${id}`;
    }
    #get(key: string): Record<string, unknown> | undefined {
      const stored = store.get(key);
      if (stored === undefined) return undefined;
      if (Date.now() >= stored.expiresAt) {
        store.delete(key);
        return undefined;
      }
      return stored.payload;
    }
    upsert(id: string, payload: Record<string, unknown>, expiresIn?: number): Promise<void> {
      // Kept a while past expiry, so the provider itself says "expired" rather than "not found".
      const expiresAt = expiresIn === undefined ? Number.POSITIVE_INFINITY : Date.now() + (expiresIn + 60) * 1000;
      store.set(this.#key(id), { payload, expiresAt });
      if (typeof payload.userCode === 'string') store.set(`userCode:${payload.userCode}`, { payload: { id }, expiresAt });
      if (typeof payload.uid === 'string') store.set(`uid:${this.#model}:${payload.uid}`, { payload: { id }, expiresAt });
      return Promise.resolve();
    }
    find(id: string): Promise<Record<string, unknown> | undefined> {
      return Promise.resolve(this.#get(this.#key(id)));
    }
    findByUserCode(userCode: string): Promise<Record<string, unknown> | undefined> {
      const id = this.#get(`userCode:${userCode}`)?.id;
      return Promise.resolve(typeof id === 'string' ? this.#get(this.#key(id)) : undefined);
    }
    findByUid(uid: string): Promise<Record<string, unknown> | undefined> {
      const id = this.#get(`uid:${this.#model}:${uid}`)?.id;
      return Promise.resolve(typeof id === 'string' ? this.#get(this.#key(id)) : undefined);
    }
    consume(id: string): Promise<void> {
      const payload = this.#get(this.#key(id));
      if (payload !== undefined) payload.consumed = Math.floor(Date.now() / 1000);
      return Promise.resolve();
    }
    destroy(id: string): Promise<void> {
      store.delete(this.#key(id));
      return Promise.resolve();
    }
    revokeByGrantId(grantId: string): Promise<void> {
      for (const [key, stored] of store) if (stored.payload.grantId === grantId) store.delete(key);
      return Promise.resolve();
    }
  };
}

// The parts of oidc-provider this helper uses; the package ships no type declarations.
interface KoaContext {
  body: unknown;
  readonly path: string;
  readonly oidc?: { readonly params?: Readonly<Record<string, unknown>> };
}
type KoaMiddleware = (ctx: KoaContext, next: () => Promise<void>) => Promise<void>;
interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => Promise<void>;
  use(middleware: KoaMiddleware): void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ readonly params: Readonly<Record<string, unknown>> }>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: object, options: { mergeWithLastSubmission: boolean }): Promise<void>;
  readonly Grant: new (properties: { accountId: string; clientId: string }) => {
    addOIDCScope(scope: string): void;
    addResourceScope(resource: string, scope: string): void;
    save(): Promise<string>;
  };
}
interface OidcProviderModule {
  readonly default: new (issuer: string, configuration: object) => ProviderInstance;
  readonly errors: { readonly InvalidTarget: new () => Error };
}

let loading: Promise<OidcProviderModule> | undefined;

/** Imports oidc-provider, without the warning it prints on every import under Node.js 20. */
function loadOidcProvider(): Promise<OidcProviderModule> {
  loading ??= (async () => {
    // A variable, so TypeScript does not look for the declarations the package does not ship.
    const name: string = 'oidc-provider';
    const original = Object.getOwnPropertyDescriptor(console, 'warn');
    const warn = console.warn.bind(console);
    // "Unsupported runtime. Use Node.js v22.x LTS": oidc-provider 9 says so on Node.js 20, where it works.
    console.warn = (...data: unknown[]) => {
      if (!(typeof data[0] === 'string' && data[0].includes('Unsupported runtime'))) warn(...data);
    };
    try {
      return (await import(name)) as OidcProviderModule;
    } finally {
      if (original !== undefined) Object.defineProperty(console, 'warn', original);
    }
  })();
  return loading;
}
