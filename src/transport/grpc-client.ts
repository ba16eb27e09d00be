/**
 * The Mesh gRPC client: mutual TLS with this host's certificate, the server's certificate
 * checked against the workspace CA and, when given, against the host name the caller meant to
 * reach; a deadline on every call, an AbortSignal that cancels it, keepalive so a peer that
 * vanishes mid-call is noticed, and every failure turned into a CmdopError by `fromGrpcStatus`.
 */
import type { PeerCertificate } from 'node:tls';
import { Client, credentials, Metadata, status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { CmdopError } from '../errors.js';
import { verifyHostCert, type VerifiedHost } from '../identity/host-cert.js';
import { normalizeHostName } from '../identity/host-name.js';
import { fromGrpcStatus } from './grpc-status.js';
import { DEFAULT_MAX_MESSAGE_BYTES, type MeshTlsOptions } from './grpc-server.js';
import type {
  ExecuteCommandReply,
  ExecuteCommandRequest,
  ListDirReply,
  ListDirRequest,
  PingReply,
  ReadFileReply,
  ReadFileRequest,
  WriteFileReply,
  WriteFileRequest,
} from './mesh-handler.js';
import { meshWire } from './mesh-proto.js';
import { CODECS, type MeshApi } from './wire-codec.js';
import type { MeshMethod } from './wire-types.js';

/** Deadline of a call when neither the call nor the client says otherwise. */
export const DEFAULT_CALL_TIMEOUT_MS = 30_000;

/** The execute_command run time assumed when the request gives none (the receiver's default). */
const DEFAULT_COMMAND_TIMEOUT_MS = 30_000;
/** Time added to a command's own timeout for its deadline: the peer kills the command first and still answers. */
const COMMAND_DEADLINE_SLACK_MS = 15_000;

/** Client keepalive during calls: ping every 10 s, give up on the connection after 5 s without an answer. */
const CLIENT_KEEPALIVE = { timeMs: 10_000, timeoutMs: 5_000 };

/** The TLS server name sent when no particular host is expected. */
const ANY_PEER_SERVERNAME = 'cmdop-peer';

/** Options for {@link createMeshClient}. */
export interface MeshClientOptions {
  /** The peer's `host:port`. */
  readonly address: string;
  /** This host's key and certificate, and the workspace CA the server must chain to. */
  readonly tls: MeshTlsOptions;
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
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  const { caCertPem } = options.tls;
  const keepalive = options.keepalive ?? CLIENT_KEEPALIVE;
  let serverIdentityError: string | undefined;
  // A peer refuses a bad client certificate during the handshake, which the caller would only
  // see as "unreachable"; checking our own first names the real problem.
  const own = checkOwnCertificate(options.tls, options.now?.() ?? new Date());

  // Called by node:tls in place of its own host name check (the address is often an IP the
  // certificate does not name); the chain to the CA was already verified by then.
  const checkServerIdentity = (_servername: string, certificate: PeerCertificate): Error | undefined => {
    try {
      const host = verifyHostCert(certificate.raw, caCertPem, { now: options.now?.() ?? new Date() });
      if (expected !== undefined && host.hostName !== expected) {
        serverIdentityError = `the server's certificate names host "${host.hostName}", not "${expected}"`;
        return new Error(serverIdentityError);
      }
      serverIdentityError = undefined;
      return undefined;
    } catch (error) {
      serverIdentityError = error instanceof Error ? error.message : String(error);
      return new Error(serverIdentityError);
    }
  };

  const channelCredentials = credentials.createSsl(
    Buffer.from(caCertPem),
    Buffer.from(options.tls.keyPem),
    Buffer.from(options.tls.certPem),
    { checkServerIdentity },
  );
  const client = new Client(options.address, channelCredentials, {
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_time_ms': positiveMs(keepalive.timeMs, 'keepalive.timeMs'),
    'grpc.keepalive_timeout_ms': positiveMs(keepalive.timeoutMs, 'keepalive.timeoutMs'),
    // Never re-send a call on our own: execute_command and write_file are not idempotent.
    'grpc.enable_retries': 0,
    // A channel of its own: credentials and shutdown of one client never touch another's.
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': 5_000,
    // SNI carries a host name, never the IP address (RFC 6066); checkServerIdentity above decides.
    'grpc.ssl_target_name_override': expected ?? ANY_PEER_SERVERNAME,
  });

  const call = <M extends MeshMethod>(method: M, request: MeshApi[M]['request'], callOptions: MeshCallOptions, fallbackTimeoutMs: number): Promise<MeshApi[M]['reply']> => {
    const codec = CODECS[method];
    const wire = meshWire().methods[method];
    const timeoutMs = positiveMs(callOptions.timeoutMs ?? fallbackTimeoutMs, 'timeoutMs');
    const signal = callOptions.signal;
    const context = { method, address: options.address, timeoutMs };
    return new Promise<MeshApi[M]['reply']>((resolveCall, reject) => {
      const now = options.now?.() ?? new Date();
      if (now.getTime() > own.notAfter.getTime()) {
        reject(ownCertificateError(`this host's certificate expired at ${own.notAfter.toISOString()}`));
        return;
      }
      if (signal?.aborted === true) {
        reject(new CmdopError('tool_failed', `the ${method} call to ${options.address} was cancelled before it started`, { cause: signal.reason }));
        return;
      }
      let message: object;
      try {
        message = codec.encodeRequest(request);
      } catch (error) {
        reject(CmdopError.from(error, 'invalid_input'));
        return;
      }
      const onAbort = (): void => {
        pending.cancel();
      };
      const pending = client.makeUnaryRequest<object, unknown>(
        wire.path,
        (value) => wire.serializeRequest(value),
        (bytes) => wire.deserializeResponse(bytes),
        message,
        new Metadata(),
        { deadline: new Date(Date.now() + timeoutMs) },
        (error: ServiceError | null, response?: unknown) => {
          signal?.removeEventListener('abort', onAbort);
          if (error !== null) {
            const cancelledByCaller = signal?.aborted === true && error.code === GrpcStatus.CANCELLED;
            reject(
              fromGrpcStatus(error, {
                ...context,
                cancelledByCaller,
                ...(serverIdentityError === undefined || error.code !== GrpcStatus.UNAVAILABLE ? {} : { serverIdentityError }),
              }),
            );
            return;
          }
          try {
            resolveCall(codec.decodeResponse(response));
          } catch (decodeError) {
            reject(CmdopError.from(decodeError, 'internal'));
          }
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  };

  return {
    ping: (callOptions = {}) => call('Ping', {}, callOptions, defaultTimeoutMs),
    executeCommand: (request, callOptions = {}) =>
      call('ExecuteCommand', request, callOptions, Math.max(defaultTimeoutMs, (request.timeout_ms ?? DEFAULT_COMMAND_TIMEOUT_MS) + COMMAND_DEADLINE_SLACK_MS)),
    readFile: (request, callOptions = {}) => call('ReadFile', request, callOptions, defaultTimeoutMs),
    writeFile: (request, callOptions = {}) => call('WriteFile', request, callOptions, defaultTimeoutMs),
    listDir: (request, callOptions = {}) => call('ListDir', request, callOptions, defaultTimeoutMs),
    close: () => {
      client.close();
    },
  };
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

function positiveMs(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new CmdopError('invalid_input', `${name} must be a whole number of milliseconds of at least 1, not ${String(value)}`);
  }
  return value;
}
