/**
 * Test helpers for src/transport: real certificates from src/identity, a recording in-memory
 * MeshHandler, real servers on 127.0.0.1 port 0, and a raw grpc-js client for what the typed
 * client deliberately cannot send (spoofed metadata, no certificate, malformed bytes).
 */
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { CmdopError } from '../../src/errors.js';
import { signHostCsr } from '../../src/identity/host-cert.js';
import { createWorkspaceCa, type WorkspaceCa } from '../../src/identity/workspace-ca.js';
import { createMeshClient, type MeshClient, type MeshClientOptions } from '../../src/transport/grpc-client.js';
import { createMeshServer, type MeshServer, type MeshServerOptions, type MeshTlsOptions } from '../../src/transport/grpc-server.js';
import type { CallContext, MeshHandler, RemoteCaller, RosterEntry } from '../../src/transport/mesh-handler.js';
import { meshWire } from '../../src/transport/mesh-proto.js';
import type { MeshMethod } from '../../src/transport/wire-types.js';
import { daysAfter, issueHost, type IssuedHost } from '../identity/identity-fixtures.js';

/** The certificates every transport test uses. */
export interface Pki {
  readonly ca: WorkspaceCa;
  readonly evilCa: WorkspaceCa;
  readonly alpha: MeshTlsOptions;
  readonly beta: MeshTlsOptions;
  /** A host certificate named "alpha" from another workspace. */
  readonly evilAlpha: MeshTlsOptions;
  /** Beta's certificate issued 10 days ago for 1 day: expired. */
  readonly expiredBeta: MeshTlsOptions;
}

function tlsOf(host: IssuedHost, ca: WorkspaceCa): MeshTlsOptions {
  return { keyPem: host.keyPem, certPem: host.certPem, caCertPem: ca.certPem };
}

/** Makes the workspace CA, alpha and beta, an expired beta, and an "evil" CA with its own alpha. */
export async function createPki(): Promise<Pki> {
  const ca = await createWorkspaceCa({ name: 'lab' });
  const evilCa = await createWorkspaceCa({ name: 'evil' });
  const past = daysAfter(new Date(), -10);
  return {
    ca,
    evilCa,
    alpha: tlsOf(await issueHost(ca, 'alpha'), ca),
    beta: tlsOf(await issueHost(ca, 'beta'), ca),
    evilAlpha: tlsOf(await issueHost(evilCa, 'alpha'), evilCa),
    expiredBeta: tlsOf(await issueHost(ca, 'beta', { now: past, validDays: 1 }), ca),
  };
}

/** One call the recording handler received. */
export interface RecordedCall {
  readonly method: MeshMethod;
  /** The verified caller; null for Join, which has none. */
  readonly caller: RemoteCaller | null;
  readonly request: unknown;
  readonly ctx: CallContext;
}

const ALLOW = Object.freeze({ decision: 'allow', source: 'mode', reason: 'default mode allows read tools' } as const);

/** A MeshHandler that records each call and answers with fixed results; `slow` methods wait for their signal. */
export interface RecordingHandler extends MeshHandler {
  readonly calls: RecordedCall[];
  /** Methods that wait until their signal aborts, then reject. */
  readonly slow: Set<MeshMethod>;
  /** Resolves on the next call that starts, with its record. */
  nextCall(): Promise<RecordedCall>;
  /** Resolves with the reason of the next slow call's abort. */
  nextAbort(): Promise<unknown>;
}

/**
 * What the recording handler needs to act as the CA host for Join and Renew. Redeeming a real
 * join token (one-time, hashed store, expiry) is the daemon's handler's job and is tested with
 * src/identity; this fake only compares the token with a fixed string.
 */
export interface FakeCaHost {
  readonly ca: WorkspaceCa;
  /** The one token Join accepts. */
  readonly token: string;
  readonly hostName: string;
  readonly address: string;
}

/** Creates a {@link RecordingHandler}; with `caHost` it also answers Join and Renew by signing with that CA. */
export function createRecordingHandler(caHost?: FakeCaHost): RecordingHandler {
  const calls: RecordedCall[] = [];
  const slow = new Set<MeshMethod>();
  let callWaiters: ((call: RecordedCall) => void)[] = [];
  let abortWaiters: ((reason: unknown) => void)[] = [];

  const roster = new Map<string, RosterEntry>();
  const notCa = (): CmdopError => new CmdopError('config', 'this test host is not the CA host');
  const record = async <T>(method: MeshMethod, caller: RemoteCaller | null, request: unknown, ctx: CallContext, reply: () => T | Promise<T>): Promise<T> => {
    const entry = { method, caller, request, ctx };
    calls.push(entry);
    const waiting = callWaiters;
    callWaiters = [];
    for (const resolve of waiting) resolve(entry);
    if (slow.has(method)) {
      const reason = await new Promise<unknown>((resolve) => {
        if (ctx.signal.aborted) resolve(ctx.signal.reason);
        else ctx.signal.addEventListener('abort', () => { resolve(ctx.signal.reason); }, { once: true });
      });
      const aborted = abortWaiters;
      abortWaiters = [];
      for (const resolve of aborted) resolve(reason);
      throw reason;
    }
    return reply();
  };

  return {
    calls,
    slow,
    nextCall: () => new Promise((resolve) => callWaiters.push(resolve)),
    nextAbort: () => new Promise((resolve) => abortWaiters.push(resolve)),
    ping: (caller, request, ctx) => record('Ping', caller, request, ctx, () => ({ host_name: 'alpha', version: '0.1.0' })),
    executeCommand: (caller, request, ctx) =>
      record('ExecuteCommand', caller, request, ctx, () => ({
        decision: { decision: 'allow', source: 'rule', rule: 'execute_command(echo *)', rule_id: 'a'.repeat(64), scope: 'global', reason: 'allowed by rule' },
        exit_code: 0,
        signal: null,
        stdout: `ran: ${request.command}\n`,
        stderr: 'ünïcødé ✓',
        truncated: { stdout: false, stderr: true },
        timed_out: false,
        aborted: false,
        duration_ms: 12,
      })),
    readFile: (caller, request, ctx) =>
      record('ReadFile', caller, request, ctx, () => ({
        decision: ALLOW,
        path: request.path,
        size: 4,
        offset: request.offset ?? 0,
        bytes: 4,
        encoding: 'base64',
        content: Buffer.from([0, 0xff, 0x10, 0x80]).toString('base64'),
        truncated: false,
        eof: true,
      })),
    writeFile: (caller, request, ctx) =>
      record('WriteFile', caller, request, ctx, () => ({ decision: ALLOW, path: request.path, bytes: request.content.length, created: true })),
    listDir: (caller, request, ctx) =>
      record('ListDir', caller, request, ctx, () => ({
        decision: ALLOW,
        path: request.path,
        entries: [
          { name: 'a.txt', type: 'file', size: 3 },
          { name: 'sub', type: 'dir' },
        ],
        truncated: false,
      })),
    join: (request, ctx) =>
      record('Join', null, request, ctx, async () => {
        if (caHost === undefined) throw notCa();
        if (request.token !== caHost.token) throw new CmdopError('denied', 'the join token is not known here, or was used already');
        return {
          cert_pem: await signHostCsr(caHost.ca, request.csr_pem, { hostName: request.host_name }),
          ca_cert_pem: caHost.ca.certPem,
          workspace_id: caHost.ca.workspaceId,
          workspace_name: caHost.ca.name,
          ca_host_name: caHost.hostName,
          ca_address: caHost.address,
        };
      }),
    renew: (caller, request, ctx) =>
      record('Renew', caller, request, ctx, async () => {
        if (caHost === undefined) throw notCa();
        // The name comes from the verified caller, never from the request.
        return { cert_pem: await signHostCsr(caHost.ca, request.csr_pem, { hostName: caller.host }) };
      }),
    announce: (caller, request, ctx) =>
      record('Announce', caller, request, ctx, () => {
        roster.set(caller.host, { name: caller.host, address: request.address, last_seen: new Date().toISOString(), online: true });
        return { peers: [...roster.values()], revoked: [], credentials: { api_keys: [], oidc: null } };
      }),
    roster: (caller, request, ctx) => record('Roster', caller, request, ctx, () => ({ peers: [...roster.values(), { name: 'gamma', online: false }], revoked: ['delta'] })),
  };
}

/** Starts servers and clients and closes them all in {@link closeAll}. */
export class Harness {
  private readonly servers: MeshServer[] = [];
  private readonly clients: { close(): void }[] = [];

  /** Starts a Mesh server on 127.0.0.1, port 0, as `tls`. */
  async server(tls: MeshTlsOptions, handler: MeshHandler, options: Partial<MeshServerOptions> = {}): Promise<MeshServer> {
    const server = await createMeshServer({ host: '127.0.0.1', port: 0, tls, handler, ...options });
    this.servers.push(server);
    return server;
  }

  /** A typed client of `server` as `tls`. */
  client(server: MeshServer, tls: MeshTlsOptions, options: Partial<MeshClientOptions> = {}): MeshClient {
    const client = createMeshClient({ address: server.address, tls, defaultTimeoutMs: 5_000, ...options });
    this.clients.push(client);
    return client;
  }

  /** A raw grpc-js client; `tls` undefined means no client certificate at all. */
  rawClient(server: MeshServer, caCertPem: string, tls?: MeshTlsOptions): Client {
    const creds = credentials.createSsl(
      Buffer.from(caCertPem),
      tls === undefined ? null : Buffer.from(tls.keyPem),
      tls === undefined ? null : Buffer.from(tls.certPem),
      { checkServerIdentity: () => undefined },
    );
    const client = new Client(server.address, creds, { 'grpc.use_local_subchannel_pool': 1, 'grpc.ssl_target_name_override': 'cmdop-peer' });
    this.clients.push(client);
    return client;
  }

  /** Closes every client, then every server at once. */
  async closeAll(): Promise<void> {
    for (const client of this.clients.splice(0)) client.close();
    await Promise.all(this.servers.splice(0).map((server) => server.close(0)));
  }
}

/** The outcome of a raw call: the decoded response or the status it failed with. */
export type RawOutcome = { readonly ok: true; readonly response: unknown } | { readonly ok: false; readonly error: ServiceError };

/** Sends `message` (an object to serialise, or raw bytes) to `method` with `metadata`, through a raw client. */
export function rawCall(client: Client, method: MeshMethod, message: object | Buffer, metadata: Record<string, string> = {}): Promise<RawOutcome> {
  const wire = meshWire().methods[method];
  const md = new Metadata();
  for (const [key, value] of Object.entries(metadata)) md.set(key, value);
  return new Promise((resolve) => {
    client.makeUnaryRequest<object | Buffer, unknown>(
      wire.path,
      (value) => (Buffer.isBuffer(value) ? value : wire.serializeRequest(value)),
      (bytes) => wire.deserializeResponse(bytes),
      message,
      md,
      { deadline: new Date(Date.now() + 5_000) },
      (error, response) => {
        resolve(error === null ? { ok: true, response } : { ok: false, error });
      },
    );
  });
}
