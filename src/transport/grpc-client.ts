/**
 * The Mesh gRPC client: mutual TLS with this host's certificate, the server's certificate
 * checked against the workspace CA and, when given, against the host name the caller meant to
 * reach; a deadline on every call, an AbortSignal that cancels it, keepalive so a peer that
 * vanishes mid-call is noticed, and every failure turned into a CmdopError by `fromGrpcStatus`.
 * {@link joinWorkspace} is the one call made without a certificate of the workspace.
 */
import { credentials } from '@grpc/grpc-js';
import { CmdopError } from '../errors.js';
import { verifyHostCert, type VerifiedHost } from '../identity/host-cert.js';
import { normalizeHostName } from '../identity/host-name.js';
import { validateServerAddress } from '../identity/join-token.js';
import { caFingerprint, normalizeFingerprint } from '../identity/workspace-ca.js';
import { pinWorkspaceCa } from './ca-pin.js';
import { ANY_PEER_SERVERNAME, channelArgs, createChannel, createServerIdentityCheck, positiveMs, unaryCall, type Channel } from './grpc-channel.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type HostIdentityPair, type MeshTlsOptions } from './grpc-server.js';
import type {
  AnnounceReply,
  AnnounceRequest,
  ExecuteCommandReply,
  ExecuteCommandRequest,
  JoinReply,
  ListDirReply,
  ListDirRequest,
  PingReply,
  ReadFileReply,
  ReadFileRequest,
  RenewReply,
  RenewRequest,
  RosterReply,
  WriteFileReply,
  WriteFileRequest,
} from './mesh-handler.js';
import type { MeshApi } from './wire-codec.js';
import type { MeshMethod } from './wire-types.js';

/**
 * Deadline of a call when neither the call nor the client says otherwise: long enough for the
 * receiver to ask its operator (permissions.ask_timeout, 60 s by default) and still answer.
 */
export const DEFAULT_CALL_TIMEOUT_MS = 75_000;

/** The execute_command run time assumed when the request gives none (the receiver's default). */
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
/**
 * Time added to a command's own timeout for its deadline: the receiver may first ask its
 * operator (60 s by default), and it kills the command before the deadline and still answers.
 */
const COMMAND_DEADLINE_SLACK_MS = 75_000;

/** Client keepalive during calls: ping every 10 s, give up on the connection after 5 s without an answer. */
const CLIENT_KEEPALIVE = { timeMs: 10_000, timeoutMs: 5_000 };


/** Options for {@link createMeshClient}. */
export interface MeshClientOptions {
  /** The peer's `host:port`. */
  readonly address: string;
  /**
   * The workspace CA the server must chain to, and this host's key and certificate; a client
   * that is not a host gives only the CA and a {@link MeshClientOptions.bearer} credential.
   */
  readonly tls: MeshTlsOptions | { readonly caCertPem: string };
  /**
   * The bearer credential (API key, OAuth access token, share token) sent with every call, for
   * a client without a host certificate; asked for anew before each call, so a token the
   * daemon refreshed is picked up.
   */
  readonly bearer?: () => Promise<string>;
  /** The host name the server's certificate must name; without it any host of the workspace is accepted. */
  readonly expectedHostName?: string;
  /** Deadline of calls that set no `timeoutMs` (default 30 s; execute_command: at least its own timeout plus 15 s). */
  readonly defaultTimeoutMs?: number;
  /** Largest message sent or received, in bytes (default 8 MiB). */
  readonly maxMessageBytes?: number;
  /** The clock used to check the server's certificate (default: the current time). */
  readonly now?: () => Date;
  /**
   * Keepalive during calls (default: ping every 10 s, drop the connection 5 s after an
   * unanswered ping), so a peer that vanishes without closing the connection fails the call.
   */
  readonly keepalive?: { readonly timeMs: number; readonly timeoutMs: number };
}

/** Per-call options. */
export interface MeshCallOptions {
  /** Deadline of this call, in ms from now. */
  readonly timeoutMs?: number;
  /** Aborting cancels the call; the peer's handler sees its own signal abort. */
  readonly signal?: AbortSignal;
}

/** A typed client of one peer's Mesh service. Every method rejects with a CmdopError only. */
export interface MeshClient {
  ping(options?: MeshCallOptions): Promise<PingReply>;
  executeCommand(request: ExecuteCommandRequest, options?: MeshCallOptions): Promise<ExecuteCommandReply>;
  readFile(request: ReadFileRequest, options?: MeshCallOptions): Promise<ReadFileReply>;
  writeFile(request: WriteFileRequest, options?: MeshCallOptions): Promise<WriteFileReply>;
  listDir(request: ListDirRequest, options?: MeshCallOptions): Promise<ListDirReply>;
  /** Asks the peer (the CA host) to sign `request.csr_pem` for this host's own name; then call {@link updateIdentity}. */
  renew(request: RenewRequest, options?: MeshCallOptions): Promise<RenewReply>;
  /** Tells the peer where this host's daemon listens; resolves with the peer's roster. */
  announce(request: AnnounceRequest, options?: MeshCallOptions): Promise<AnnounceReply>;
  /** The workspace's hosts as the peer knows them. */
  roster(options?: MeshCallOptions): Promise<RosterReply>;
  /**
   * Uses a new key and certificate (after a renewal) for calls that start from now on: a new
   * channel is opened with them, and the old one is closed once its calls in flight finish.
   * Throws CmdopError('config') and keeps the old identity when the new certificate is not a
   * valid certificate of the workspace or the key does not match it.
   */
  updateIdentity(identity: HostIdentityPair): void;
  /** Closes the channel; calls in flight fail with 'unavailable'. */
  close(): void;
}

/**
 * Creates a client of the Mesh service at `options.address`; it connects on the first call.
 * Throws CmdopError('config') when this host's own certificate is not a valid certificate of
 * the workspace (foreign, expired, damaged), since every peer would refuse it.
 */
export function createMeshClient(options: MeshClientOptions): MeshClient {
  const expected = options.expectedHostName === undefined ? undefined : normalizeHostName(options.expectedHostName);
  const defaultTimeoutMs = positiveMs(options.defaultTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, 'defaultTimeoutMs');
  const now = (): Date => options.now?.() ?? new Date();
  const { caCertPem } = options.tls;
  const serverCheck = createServerIdentityCheck(caCertPem, expected, now);
  const args = channelArgs({
    maxMessageBytes: options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
    keepalive: options.keepalive ?? CLIENT_KEEPALIVE,
    // SNI carries a host name, never the IP address (RFC 6066); the server identity check decides.
    servername: expected ?? ANY_PEER_SERVERNAME,
  });
  // A peer refuses a bad client certificate before the handler, which the caller would only
  // see as a refusal; checking our own first names the real problem.
  const hostTls = 'certPem' in options.tls ? options.tls : undefined;
  if ((hostTls === undefined) === (options.bearer === undefined)) {
    throw new CmdopError('internal', 'a Mesh client calls either with a host certificate or with a bearer credential, and with exactly one');
  }
  let own = hostTls === undefined ? undefined : checkOwnCertificate(hostTls, now());

  const open = (identity: HostIdentityPair | undefined): Channel => {
    const channelCredentials = credentials.createSsl(Buffer.from(caCertPem), identity === undefined ? null : Buffer.from(identity.keyPem), identity === undefined ? null : Buffer.from(identity.certPem), {
      checkServerIdentity: serverCheck.check,
    });
    return createChannel(options.address, channelCredentials, args);
  };
  let channel = open(hostTls);
  const retired = new Set<Channel>();

  const call = async <M extends ClientMethod>(method: M, request: MeshApi[M]['request'], callOptions: MeshCallOptions, fallbackTimeoutMs: number): Promise<MeshApi[M]['reply']> => {
    if (own !== undefined && now().getTime() > own.notAfter.getTime()) {
      throw ownCertificateError(`this host's certificate expired at ${own.notAfter.toISOString()}`);
    }
    const bearer = options.bearer === undefined ? undefined : await options.bearer();
    return unaryCall(channel, method, request, {
      address: options.address,
      timeoutMs: positiveMs(callOptions.timeoutMs ?? fallbackTimeoutMs, 'timeoutMs'),
      serverIdentityError: serverCheck.lastError,
      ...(bearer === undefined ? {} : { bearer }),
      ...(callOptions.signal === undefined ? {} : { signal: callOptions.signal }),
    });
  };

  return {
    ping: (callOptions = {}) => call('Ping', {}, callOptions, defaultTimeoutMs),
    executeCommand: (request, callOptions = {}) =>
      call('ExecuteCommand', request, callOptions, Math.max(defaultTimeoutMs, (request.timeout_ms ?? DEFAULT_COMMAND_TIMEOUT_MS) + COMMAND_DEADLINE_SLACK_MS)),
    readFile: (request, callOptions = {}) => call('ReadFile', request, callOptions, defaultTimeoutMs),
    writeFile: (request, callOptions = {}) => call('WriteFile', request, callOptions, defaultTimeoutMs),
    listDir: (request, callOptions = {}) => call('ListDir', request, callOptions, defaultTimeoutMs),
    renew: (request, callOptions = {}) => call('Renew', request, callOptions, defaultTimeoutMs),
    announce: (request, callOptions = {}) => call('Announce', request, callOptions, defaultTimeoutMs),
    roster: (callOptions = {}) => call('Roster', {}, callOptions, defaultTimeoutMs),
    updateIdentity: (identity) => {
      if (hostTls === undefined) throw new CmdopError('internal', 'a client with a bearer credential has no host identity to update');
      const next = { keyPem: identity.keyPem, certPem: identity.certPem, caCertPem };
      own = checkOwnCertificate(next, now());
      const previous = channel;
      channel = open(next);
      retired.add(previous);
      previous.retire(() => retired.delete(previous));
    },
    close: () => {
      for (const old of retired) old.client.close();
      retired.clear();
      channel.client.close();
    },
  };
}

/** Options for {@link connectWithBearer}. */
export interface BearerClientOptions {
  /** The host's `HOST:PORT`. */
  readonly address: string;
  /** The workspace CA fingerprint the credential carries: the server must chain to that CA. */
  readonly caFingerprint: string;
  /** The host name the server's certificate must name. */
  readonly expectedHostName: string;
  /** The credential, asked for before each call. Never logged. */
  readonly bearer: () => Promise<string>;
  /** Time allowed to reach the server and read its certificates (default 10 s). */
  readonly connectTimeoutMs?: number;
  readonly defaultTimeoutMs?: number;
  readonly now?: () => Date;
}

/**
 * A client for a caller that is not a host (a CI runner with an API key, a user with an OAuth
 * token, a guest with a share token): the workspace CA is found by the fingerprint the
 * credential carries (pinWorkspaceCa), the server must be the host `expectedHostName` of that
 * CA, and the credential travels only over that TLS connection.
 */
export async function connectWithBearer(options: BearerClientOptions): Promise<MeshClient> {
  const address = validateServerAddress(options.address);
  const caCertPem = await pinWorkspaceCa(address, normalizeFingerprint(options.caFingerprint), positiveMs(options.connectTimeoutMs ?? 10_000, 'connectTimeoutMs'));
  return createMeshClient({
    address,
    tls: { caCertPem },
    bearer: options.bearer,
    expectedHostName: options.expectedHostName,
    ...(options.defaultTimeoutMs === undefined ? {} : { defaultTimeoutMs: options.defaultTimeoutMs }),
    ...(options.now === undefined ? {} : { now: options.now }),
  });
}

/** The RPCs a {@link MeshClient} makes (Join has its own client without a certificate). */
type ClientMethod = Exclude<MeshMethod, 'Join'>;

/** Options for {@link joinWorkspace}. */
export interface JoinWorkspaceOptions {
  /** The CA host's `HOST:PORT` (IPv6 in brackets). */
  readonly address: string;
  /** The workspace CA fingerprint the join token carries (colons and upper case accepted). */
  readonly fingerprint: string;
  /** The whole join token; sent to the server only after it proved to be that workspace. */
  readonly token: string;
  /** The host name this host asks for. */
  readonly hostName: string;
  /** The PKCS#10 request for `hostName`, PEM (createHostKeyAndCsr). */
  readonly csrPem: string;
  /** The CA host's name from the token: any other member of the workspace is refused as the server. */
  readonly expectedHostName?: string | undefined;
  /** Deadline of the whole join, in ms (default 30 s). */
  readonly timeoutMs?: number;
  /** The clock used to check the server's certificates (default: the current time). */
  readonly now?: () => Date;
}

/**
 * Joins a workspace (DESIGN.md §6) from a host that has no certificate yet. The server is
 * pinned by the CA fingerprint from the join token: a first TLS connection only reads the
 * server's certificate chain and picks the certificate with that fingerprint, which must be a
 * workspace CA; the Join call then trusts that CA and nothing else, so the token never reaches
 * a server that is not a host of that workspace.
 *
 * Rejects with CmdopError: 'denied' when no certificate of the chain has the fingerprint (or the
 * server refuses the token), 'unavailable' when the server cannot be reached in time,
 * 'invalid_input' for a malformed address, fingerprint or request, 'internal' for a reply that
 * does not hold together (a certificate of another CA, or for another host name).
 */
export async function joinWorkspace(options: JoinWorkspaceOptions): Promise<JoinReply> {
  const address = validateServerAddress(options.address);
  const fingerprint = normalizeFingerprint(options.fingerprint);
  const hostName = normalizeHostName(options.hostName);
  const timeoutMs = positiveMs(options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, 'timeoutMs');
  const now = (): Date => options.now?.() ?? new Date();
  const deadline = Date.now() + timeoutMs;

  const caCertPem = await pinWorkspaceCa(address, fingerprint, timeoutMs);
  const serverCheck = createServerIdentityCheck(caCertPem, options.expectedHostName === undefined ? undefined : normalizeHostName(options.expectedHostName), now);
  // No client certificate: Join is the one RPC the server lets through without one.
  const channelCredentials = credentials.createSsl(Buffer.from(caCertPem), null, null, { checkServerIdentity: serverCheck.check });
  const channel = createChannel(address, channelCredentials, channelArgs({ maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, keepalive: CLIENT_KEEPALIVE, servername: ANY_PEER_SERVERNAME }));
  let reply: JoinReply;
  try {
    reply = await unaryCall(
      channel,
      'Join',
      { token: options.token, host_name: hostName, csr_pem: options.csrPem },
      { address, timeoutMs: Math.max(1, deadline - Date.now()), serverIdentityError: serverCheck.lastError },
    );
  } finally {
    channel.client.close();
  }
  checkJoinReply(reply, { address, fingerprint, hostName, now: now() });
  return reply;
}

/** Checks that a Join reply holds together: the pinned CA, a certificate it signed for the host name asked for. */
function checkJoinReply(reply: JoinReply, expected: { readonly address: string; readonly fingerprint: string; readonly hostName: string; readonly now: Date }): void {
  const wrong = (why: string, cause?: unknown): CmdopError =>
    new CmdopError('internal', `the server at ${expected.address} answered the join with ${why}; nothing should be kept`, {
      ...(cause === undefined ? {} : { cause }),
      hint: 'Ask the workspace owner to check the CA host (cmdop agent status), then join again with a new token.',
    });
  if (caFingerprint(reply.ca_cert_pem) !== expected.fingerprint) throw wrong('a CA certificate other than the one it presented');
  let host: VerifiedHost;
  try {
    host = verifyHostCert(reply.cert_pem, reply.ca_cert_pem, { now: expected.now });
  } catch (error) {
    throw wrong(`a certificate that does not verify (${error instanceof Error ? error.message : String(error)})`, error);
  }
  if (host.hostName !== expected.hostName) throw wrong(`a certificate for "${host.hostName}", not "${expected.hostName}"`);
  if (host.workspaceId !== reply.workspace_id) throw wrong(`workspace id ${reply.workspace_id}, while its certificate names ${host.workspaceId}`);
}

function checkOwnCertificate(tls: MeshTlsOptions, now: Date): VerifiedHost {
  try {
    return verifyHostCert(tls.certPem, tls.caCertPem, { now });
  } catch (error) {
    throw ownCertificateError(error instanceof Error ? error.message : String(error), error);
  }
}

function ownCertificateError(reason: string, cause?: unknown): CmdopError {
  return new CmdopError('config', `this host cannot call peers: ${reason.replace(/^the presented host certificate/, "its certificate")}`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'Renew the host certificate, or join the workspace again with `cmdop join`.',
  });
}
