/**
 * What authenticating a bearer credential adds to a call, against a call with certificate
 * identity only, in one run. Goal: at most 50 µs added at p50 (`ping_added`).
 *
 * Two levels:
 * - `step`: the authentication step alone, in a tight loop with warm caches. The baseline,
 *   `certificate`, is `authenticatePeer` with a real host certificate's DER; against it, the
 *   daemon's real bearer authenticator (`createBearerAuthenticator`) with a workspace API key on
 *   the CA host (api-keys.json through its stat cache) and on a joined host (its copy of the CA
 *   host's records), and with an OAuth access token (the verifier's cache of verified tokens).
 *   `certificate_as_served` adds what grpc-js does for a host on every call, so that it compares
 *   with the bearer kinds as the server runs them. The first verifications, with nothing cached,
 *   are reported apart (`first_verification`).
 * - `ping`: whole Ping round trips to one real Mesh server with real TLS on loopback, at
 *   concurrency 1, from a host client (mutual TLS), an API-key client and an OAuth client, in
 *   interleaved rounds so that drift and noise fall on every kind alike. A fourth client's
 *   credential is let through unchecked (`bearer_unchecked`), so `verify_p50_us` says what the
 *   verification costs inside a real call, which the tight loop of `step` understates.
 *
 * `step_added` and `ping_added` compare each bearer kind with the certificate. The identity
 * provider is a stand-in: a loopback HTTP server with a discovery document and a key set, and
 * access tokens signed here with jose. oidc-provider (a devDependency) is meant for the tests;
 * the verifier sees only discovery, the key set and the token, which is all this serves.
 */
import { randomUUID, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect, createServer as createTlsServer, type TLSSocket } from 'node:tls';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { ensureCmdopHome } from '../src/config/cmdop-home.js';
import { createBearerAuthenticator } from '../src/daemon/bearer-auth.js';
import { cacheCredentials } from '../src/daemon/workspace-credentials.js';
import { CmdopError } from '../src/errors.js';
import { createApiKey, readApiKeyRecords } from '../src/identity/api-key.js';
import { createHostKeyAndCsr, signHostCsr } from '../src/identity/host-cert.js';
import { writeOidcConfig, type OidcConfig } from '../src/identity/oidc-config.js';
import { createWorkspaceCa, saveCa, saveCaCert, tlsDir, type WorkspaceCa } from '../src/identity/workspace-ca.js';
import { connectWithBearer, createMeshClient, type MeshClient } from '../src/transport/grpc-client.js';
import { createMeshServer, type MeshServer, type MeshTlsOptions } from '../src/transport/grpc-server.js';
import type { MeshHandler, RemoteCaller } from '../src/transport/mesh-handler.js';
import { authenticatePeer, type PeerAuthContext } from '../src/transport/peer-identity.js';
import { percentile } from './stats.js';

/** One figure of this benchmark, printed as one JSON line. */
export interface AuthBenchResult {
  readonly bench: 'auth';
  readonly name: string;
  readonly [key: string]: number | string | boolean;
}

const GOAL_ADDED_P50_US = 50;
/** Authentication steps: microseconds each, so many of them; 20 000 measured per kind. */
const STEP_PLAN: Plan = { rounds: 10, perRound: 2_000, warmup: 2_000 };
/** Ping round trips: 2 000 measured per kind after the warm-up. */
const PING_PLAN: Plan = { rounds: 100, perRound: 20, warmup: 300 };
/** Fresh access tokens verified with the provider's keys at hand, none seen before. */
const NEW_TOKENS = 200;

const KEY_NAME = 'bench-ci';
const SUBJECT = 'bench-user';
const CLIENT_ID = 'cmdop-bench';
/**
 * A bearer credential the benchmark's server lets through unchecked: a diagnostic kind, so that
 * what a bearer call adds splits into carrying the credential and verifying it.
 */
const UNCHECKED = 'cmdop-bench-unchecked';
const UNCHECKED_PRINCIPAL = 'bench:unchecked';
/** The address grpc-js would report for a bearer caller; only logged, never evidence. */
const PEER = { peer: 'ipv4:127.0.0.1:40000' };

type StepKind = 'certificate' | 'certificate_as_served' | 'api_key' | 'api_key_joined_host' | 'oauth';
type PingKind = 'certificate' | 'bearer_unchecked' | 'api_key' | 'oauth';

interface Plan {
  readonly rounds: number;
  readonly perRound: number;
  readonly warmup: number;
}

interface Series {
  /** Per-call latency in microseconds, every round's in turn. */
  readonly samples: number[];
  errors: number;
  firstError: unknown;
}

interface Summary {
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

/** Runs the auth benchmark; resolves with its figures, always stopping what it started. */
export async function benchAuth(): Promise<AuthBenchResult[]> {
  const root = mkdtempSync(join(tmpdir(), 'cmdop-bench-auth-'));
  const cleanup: (() => Promise<void> | void)[] = [
    () => {
      rmSync(root, { recursive: true, force: true });
    },
  ];
  try {
    const provider = await startProvider();
    cleanup.unshift(() => provider.close());
    const ws = await setUpHomes(root, provider.issuer);
    const tlsPair = await openTlsPair(ws);
    cleanup.unshift(() => {
      tlsPair.close();
    });
    const results: AuthBenchResult[] = [];
    results.push(...(await benchSteps(ws, provider, tlsPair.served)));

    // A fresh authenticator for the server, as a daemon has: its first OAuth call discovers the provider (warm-up).
    const bearer = createBearerAuthenticator({ home: ws.caHome, selfHost: 'alpha', isCa: true, caFingerprint: ws.ca.fingerprint });
    const server = await createMeshServer({
      host: '127.0.0.1',
      port: 0,
      tls: ws.alpha,
      handler: pingHandler(ws.lastCaller),
      authenticateBearer: (credential, call) =>
        credential === UNCHECKED ? Promise.resolve(Object.freeze({ kind: 'remote', host: '', principal: UNCHECKED_PRINCIPAL, credential: 'api_key', address: call.peer } as const)) : bearer(credential, call),
    });
    cleanup.unshift(() => server.close(0));
    const clients = await openClients(server, ws, await provider.sign(), cleanup);
    results.push(...(await benchPings(clients)));
    return results;
  } finally {
    for (const step of cleanup) await step();
  }
}

/** The workspace the benchmark authenticates against. */
interface Workspace {
  readonly ca: WorkspaceCa;
  /** The CA host, which serves; its home has api-keys.json and oidc.json. */
  readonly alpha: MeshTlsOptions;
  /** A joined host: the caller with a certificate, and the verifier of a copy of the records. */
  readonly beta: MeshTlsOptions;
  readonly caHome: string;
  readonly joinedHome: string;
  readonly apiKey: string;
  /** The caller the Ping handler saw last, to check each client is who it should be. */
  readonly lastCaller: { current: RemoteCaller | undefined };
}

/**
 * A CA host's home as `workspace init`, `workspace keys create` and `workspace oidc set` leave
 * it, and a joined host's with the credentials an announce reply would have cached.
 */
async function setUpHomes(root: string, issuer: string): Promise<Workspace> {
  const caHome = join(root, 'alpha');
  const joinedHome = join(root, 'beta');
  const ca = await createWorkspaceCa({ name: 'bench' });
  await ensureCmdopHome(caHome);
  await saveCa(tlsDir(caHome), ca);
  const alpha = await issueHost(ca, 'alpha');
  const beta = await issueHost(ca, 'beta');
  // A key as `keys create` makes one: it carries the workspace and the CA host, so it is as long as a real one.
  const created = await createApiKey(caHome, { name: KEY_NAME, workspace: 'bench', caHost: 'alpha', caAddress: '127.0.0.1:8470' });
  const oidc: OidcConfig = { issuer, client_id: CLIENT_ID, audience: null };
  await writeOidcConfig(caHome, oidc);

  await ensureCmdopHome(joinedHome);
  await saveCaCert(tlsDir(joinedHome), ca.certPem);
  const entries = (await readApiKeyRecords(caHome)).map((r) => ({ id: r.id, name: r.name, secret_hash: r.secretHash, expires_at: r.expires_at, revoked_at: r.revoked_at }));
  await cacheCredentials(joinedHome, { api_keys: entries, oidc });
  return { ca, alpha, beta, caHome, joinedHome, apiKey: created.key, lastCaller: { current: undefined } };
}

async function issueHost(ca: WorkspaceCa, hostName: string): Promise<MeshTlsOptions> {
  const { keyPem, csrPem } = await createHostKeyAndCsr(hostName);
  return { keyPem, certPem: await signHostCsr(ca, csrPem, { hostName }), caCertPem: ca.certPem };
}

/** The authentication step alone: first verifications once, then every kind warm, interleaved. */
async function benchSteps(ws: Workspace, provider: Provider, served: TLSSocket): Promise<AuthBenchResult[]> {
  // What grpc-js hands the server for a mutual-TLS caller: the peer certificate's DER.
  const peerAuth: PeerAuthContext = { transportSecurityType: 'ssl', sslPeerCertificate: { raw: new X509Certificate(ws.beta.certPem).raw } };
  const caHost = createBearerAuthenticator({ home: ws.caHome, selfHost: 'alpha', isCa: true, caFingerprint: ws.ca.fingerprint });
  const joinedHost = createBearerAuthenticator({ home: ws.joinedHome, selfHost: 'beta', isCa: false, caFingerprint: ws.ca.fingerprint });
  const token = await provider.sign();
  const certificate = (): RemoteCaller => authenticatePeer(peerAuth, ws.ca.certPem, new Date());
  // What grpc-js (1.14) does for every call from a host before the server sees it: getAuthContext()
  // builds the peer certificate object anew. A bearer caller has no verified certificate and skips it.
  const certificateAsServed = (): RemoteCaller => authenticatePeer({ transportSecurityType: 'ssl', sslPeerCertificate: served.getPeerCertificate() }, ws.ca.certPem, new Date());

  const results: AuthBenchResult[] = [];
  const first = async (kind: string, what: string, call: () => unknown, expected: string): Promise<void> => {
    const requestsBefore = provider.requests();
    const start = process.hrtime.bigint();
    const caller = await call();
    const us = Number(process.hrtime.bigint() - start) / 1000;
    expectPrincipal(caller, expected, `the first ${kind} verification`);
    results.push({ bench: 'auth', name: 'first_verification', kind, what, us: round(us), provider_requests: provider.requests() - requestsBefore });
  };
  // The first of each kind in this process also pays one-time work (module loading, JIT);
  // `certificate_new` and `oauth_new_token` are the same work again, without it.
  await first('certificate', 'parse the certificate, check its signature and names, cache it', certificate, 'host:beta');
  const otherHost: PeerAuthContext = { transportSecurityType: 'ssl', sslPeerCertificate: { raw: new X509Certificate(ws.alpha.certPem).raw } };
  await first('certificate_new', 'the same for a second certificate', () => authenticatePeer(otherHost, ws.ca.certPem, new Date()), 'host:alpha');
  await first('api_key', 'CA host: read and parse api-keys.json, check the key, write last_used_at', () => caHost(ws.apiKey, PEER), `key:${KEY_NAME}`);
  await first('api_key_joined_host', 'joined host: read and parse its copy of the records, check the key', () => joinedHost(ws.apiKey, PEER), `key:${KEY_NAME}`);
  await first('oauth', 'discovery and key set over loopback HTTP, RS256 signature and claims, cache the token', () => caHost(token, PEER), `user:${SUBJECT}`);

  // Tokens never seen, with the keys at hand: what a new token (a login, a refresh) costs once.
  const fresh = await Promise.all(Array.from({ length: NEW_TOKENS }, () => provider.sign()));
  const freshSamples: number[] = [];
  for (const each of fresh) {
    const start = process.hrtime.bigint();
    expectPrincipal(await caHost(each, PEER), `user:${SUBJECT}`, 'a new access token');
    freshSamples.push(Number(process.hrtime.bigint() - start) / 1000);
  }
  const freshSummary = summarize(freshSamples);
  results.push({ bench: 'auth', name: 'first_verification', kind: 'oauth_new_token', what: 'a token not seen before, the keys at hand: RS256 signature and claims, cache the token', tokens: NEW_TOKENS, p50_us: round(freshSummary.p50), p99_us: round(freshSummary.p99) });

  const requestsBefore = provider.requests();
  const series = await interleave<StepKind>(
    {
      certificate,
      certificate_as_served: certificateAsServed,
      api_key: () => caHost(ws.apiKey, PEER),
      api_key_joined_host: () => joinedHost(ws.apiKey, PEER),
      oauth: () => caHost(token, PEER),
    },
    STEP_PLAN,
  );
  const providerRequests = provider.requests() - requestsBefore;
  const summaries = new Map<StepKind, Summary>();
  for (const [kind, s] of entries(series)) {
    if (s.errors > 0) throw new Error(`auth bench: ${s.errors} ${kind} authentications failed; the first: ${messageOf(s.firstError)}`);
    const summary = summarize(s.samples);
    summaries.set(kind, summary);
    results.push({
      bench: 'auth',
      name: 'step',
      kind,
      iterations: s.samples.length,
      p50_us: round(summary.p50),
      p99_us: round(summary.p99),
      max_us: round(summary.max),
      ...(kind === 'oauth' ? { provider_requests: providerRequests } : {}),
    });
  }
  const asServed = need(summaries, 'certificate_as_served');
  for (const kind of ['api_key', 'api_key_joined_host', 'oauth'] as const) {
    const bearer = need(summaries, kind);
    results.push({ ...added('step_added', kind, need(summaries, 'certificate'), bearer), added_p50_us_vs_certificate_as_served: round(bearer.p50 - asServed.p50) });
  }
  return results;
}

/** The four clients, each checked once to arrive as who it should. */
async function openClients(server: MeshServer, ws: Workspace, token: string, cleanup: (() => Promise<void> | void)[]): Promise<Record<PingKind, MeshClient>> {
  const keep = (client: MeshClient): MeshClient => {
    cleanup.unshift(() => {
      client.close();
    });
    return client;
  };
  const bearerClient = async (credential: string): Promise<MeshClient> =>
    keep(await connectWithBearer({ address: server.address, caFingerprint: ws.ca.fingerprint, expectedHostName: 'alpha', bearer: () => Promise.resolve(credential) }));
  const clients: Record<PingKind, MeshClient> = {
    certificate: keep(createMeshClient({ address: server.address, tls: ws.beta, expectedHostName: 'alpha' })),
    bearer_unchecked: await bearerClient(UNCHECKED),
    api_key: await bearerClient(ws.apiKey),
    oauth: await bearerClient(token),
  };
  const expected: Record<PingKind, string> = { certificate: 'host:beta', bearer_unchecked: UNCHECKED_PRINCIPAL, api_key: `key:${KEY_NAME}`, oauth: `user:${SUBJECT}` };
  for (const [kind, client] of entries(clients)) {
    ws.lastCaller.current = undefined;
    await client.ping();
    expectPrincipal(ws.lastCaller.current, expected[kind], `a ${kind} Ping`);
  }
  return clients;
}

/** Whole Ping round trips per kind, interleaved, and what each bearer kind adds to the certificate's. */
async function benchPings(clients: Record<PingKind, MeshClient>): Promise<AuthBenchResult[]> {
  const series = await interleave<PingKind>(
    {
      certificate: () => clients.certificate.ping(),
      bearer_unchecked: () => clients.bearer_unchecked.ping(),
      api_key: () => clients.api_key.ping(),
      oauth: () => clients.oauth.ping(),
    },
    PING_PLAN,
  );
  const results: AuthBenchResult[] = [];
  const summaries = new Map<PingKind, Summary>();
  for (const [kind, s] of entries(series)) {
    if (s.firstError !== undefined) process.stderr.write(`auth bench: ${s.errors} ${kind} Pings failed; the first: ${messageOf(s.firstError)}\n`);
    const summary = summarize(s.samples);
    summaries.set(kind, summary);
    results.push({ bench: 'auth', name: 'ping', kind, concurrency: 1, calls: s.samples.length, errors: s.errors, p50_us: round(summary.p50), p99_us: round(summary.p99), max_us: round(summary.max) });
  }
  const base = series.certificate.samples;
  const unchecked = need(summaries, 'bearer_unchecked');
  for (const kind of ['api_key', 'oauth'] as const) {
    // The same figure from each half of the run: how far apart they are says how much to trust it.
    const [bearerFirst, bearerSecond] = halves(series[kind].samples);
    const [baseFirst, baseSecond] = halves(base);
    results.push({
      ...added('ping_added', kind, need(summaries, 'certificate'), need(summaries, kind)),
      added_p50_us_first_half: round(percentile(bearerFirst, 0.5) - percentile(baseFirst, 0.5)),
      added_p50_us_second_half: round(percentile(bearerSecond, 0.5) - percentile(baseSecond, 0.5)),
      // What verifying the credential costs inside a real call, among the server's other work: more than in `step`'s tight loop.
      verify_p50_us: round(need(summaries, kind).p50 - unchecked.p50),
    });
  }
  return results;
}

/**
 * Calls every kind `plan.warmup` times, then `plan.rounds` rounds of `plan.perRound` calls per
 * kind, one kind after another, the order shifted by one each round. A call that returns a
 * promise is timed until it settles; one that does not, until it returns.
 */
async function interleave<K extends string>(calls: Readonly<Record<K, () => unknown>>, plan: Plan): Promise<Record<K, Series>> {
  const kinds = Object.keys(calls) as K[];
  const series = Object.fromEntries(kinds.map((kind) => [kind, { samples: [], errors: 0, firstError: undefined }])) as unknown as Record<K, Series>;
  const run = async (kind: K, count: number, record: boolean): Promise<void> => {
    const call = calls[kind];
    const s = series[kind];
    for (let i = 0; i < count; i++) {
      const start = process.hrtime.bigint();
      try {
        const pending = call();
        if (pending instanceof Promise) await pending;
      } catch (error) {
        s.errors++;
        s.firstError ??= error;
      }
      if (record) s.samples.push(Number(process.hrtime.bigint() - start) / 1000);
    }
  };
  for (const kind of kinds) await run(kind, plan.warmup, false);
  for (const s of Object.values<Series>(series)) {
    s.errors = 0;
    s.firstError = undefined;
  }
  for (let round = 0; round < plan.rounds; round++) {
    for (let i = 0; i < kinds.length; i++) await run(kinds[(i + round) % kinds.length] as K, plan.perRound, true);
  }
  return series;
}

function added(name: 'step_added' | 'ping_added', kind: string, base: Summary, other: Summary): AuthBenchResult {
  const addedP50 = other.p50 - base.p50;
  return {
    bench: 'auth',
    name,
    kind,
    baseline: 'certificate',
    added_p50_us: round(addedP50),
    added_p99_us: round(other.p99 - base.p99),
    p50_ratio: round(other.p50 / base.p50),
    goal: `added_p50_us<=${GOAL_ADDED_P50_US}`,
    met: addedP50 <= GOAL_ADDED_P50_US,
  };
}

/**
 * A mutual-TLS connection on loopback set up as the Mesh server sets up its own (a client
 * certificate asked for, not required, checked against the workspace CA): beta calls alpha.
 * Resolves with the server's side, verified.
 */
async function openTlsPair(ws: Workspace): Promise<{ served: TLSSocket; close(): void }> {
  const server = createTlsServer({ key: ws.alpha.keyPem, cert: ws.alpha.certPem, ca: ws.ca.certPem, requestCert: true, rejectUnauthorized: false });
  const accepted = new Promise<TLSSocket>((resolve) => {
    server.once('secureConnection', resolve);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const client = tlsConnect({
    host: '127.0.0.1',
    port: (server.address() as AddressInfo).port,
    key: ws.beta.keyPem,
    cert: ws.beta.certPem,
    ca: ws.ca.certPem,
    // The chain is verified; host certificates name hosts, not the address dialled.
    checkServerIdentity: () => undefined,
  });
  const served = await accepted;
  if (!served.authorized) throw new Error(`auth bench setup: the loopback TLS server did not verify beta's certificate: ${String(served.authorizationError)}`);
  return {
    served,
    close: () => {
      client.destroy();
      served.destroy();
      server.close();
    },
  };
}

/** A Mesh handler whose Ping answers at once and notes the caller; nothing else is served. */
function pingHandler(lastCaller: { current: RemoteCaller | undefined }): MeshHandler {
  const unused = (): Promise<never> => Promise.reject(new CmdopError('internal', 'the auth benchmark serves Ping only'));
  return {
    ping: (caller) => {
      lastCaller.current = caller;
      return Promise.resolve({ host_name: 'alpha', version: '0.1.0' });
    },
    executeCommand: unused,
    readFile: unused,
    writeFile: unused,
    listDir: unused,
    join: unused,
    renew: unused,
    announce: unused,
    roster: unused,
  };
}

/** The stand-in identity provider. */
interface Provider {
  readonly issuer: string;
  /** HTTP requests served so far (discovery and key set). */
  requests(): number;
  /** A fresh access token for {@link SUBJECT}, valid for an hour. */
  sign(): Promise<string>;
  close(): Promise<void>;
}

/** Serves a discovery document and an RS256 key set on 127.0.0.1 (RS256: what most providers sign with by default). */
async function startProvider(): Promise<Provider> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const kid = 'bench-key-1';
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  let issuer = '';
  let requests = 0;
  const server = createServer((request, response) => {
    requests++;
    const documents: Readonly<Record<string, object>> = {
      '/.well-known/openid-configuration': { issuer, jwks_uri: `${issuer}/jwks`, token_endpoint: `${issuer}/token` },
      '/jwks': { keys: [jwk] },
    };
    const document = documents[request.url ?? ''];
    response.writeHead(document === undefined ? 404 : 200, { 'content-type': 'application/json' });
    response.end(JSON.stringify(document ?? { error: 'not_found' }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    issuer,
    requests: () => requests,
    sign: () =>
      new SignJWT({ scope: 'openid' })
        .setProtectedHeader({ alg: 'RS256', typ: 'at+jwt', kid })
        .setIssuer(issuer)
        .setSubject(SUBJECT)
        .setAudience(CLIENT_ID)
        .setIssuedAt()
        .setExpirationTime('1h')
        .setJti(randomUUID())
        .sign(privateKey),
    close: () =>
      new Promise((resolve) => {
        // The verifier's fetches keep their connections alive.
        server.closeAllConnections();
        server.close(() => {
          resolve();
        });
      }),
  };
}

function expectPrincipal(caller: unknown, expected: string, what: string): void {
  const principal = (caller as RemoteCaller | undefined)?.principal;
  if (principal !== expected) throw new Error(`auth bench setup: ${what} was authenticated as ${String(principal)}, not ${expected}`);
}

/** The samples of the first half of the rounds, and of the second. */
function halves(samples: readonly number[]): [readonly number[], readonly number[]] {
  const middle = Math.floor(samples.length / 2);
  return [samples.slice(0, middle), samples.slice(middle)];
}

function summarize(samples: readonly number[]): Summary {
  return { p50: percentile(samples, 0.5), p99: percentile(samples, 0.99), max: Math.max(...samples) };
}

function need<K>(map: ReadonlyMap<K, Summary>, key: K): Summary {
  const value = map.get(key);
  if (value === undefined) throw new Error(`auth bench: no figures for ${String(key)}`);
  return value;
}

function entries<K extends string, V>(record: Readonly<Record<K, V>>): [K, V][] {
  return Object.entries(record) as [K, V][];
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
