/**
 * The pieces every Mesh channel shares, whether it carries this host's certificate (the
 * MeshClient) or none (joinWorkspace): channel options, the server identity check, one unary
 * call with its error mapping, and a channel that closes itself once retired and idle.
 * Internal to the transport layer; not re-exported from its index.
 */
import type { PeerCertificate } from 'node:tls';
import { Client, Metadata, status as GrpcStatus, type ChannelCredentials, type ChannelOptions, type ServiceError } from '@grpc/grpc-js';
import { CmdopError } from '../errors.js';
import { verifyHostCert } from '../identity/host-cert.js';
import { fromGrpcStatus } from './grpc-status.js';
import { meshWire } from './mesh-proto.js';
import { CODECS, type MeshApi } from './wire-codec.js';
import type { MeshMethod } from './wire-types.js';

/** The TLS server name sent when no particular host is expected. */
export const ANY_PEER_SERVERNAME = 'cmdop-peer';

/** One grpc-js client and the calls in flight on it, so a retired one closes when they finish. */
export interface Channel {
  readonly client: Client;
  /** Counts a call in; the returned function counts it out. */
  enter(): () => void;
  /** Closes the client once no call is in flight (at once if none is), then runs `closed`. */
  retire(closed?: () => void): void;
}

/** Opens a grpc-js client of `address` with `channelCredentials`; it connects on the first call. */
export function createChannel(address: string, channelCredentials: ChannelCredentials, args: ChannelOptions): Channel {
  const client = new Client(address, channelCredentials, args);
  let inFlight = 0;
  let onIdle: (() => void) | undefined;
  const closeNow = (): void => {
    client.close();
    const done = onIdle;
    onIdle = undefined;
    done?.();
  };
  return {
    client,
    enter: () => {
      inFlight += 1;
      let left = false;
      return () => {
        if (left) return;
        left = true;
        inFlight -= 1;
        if (inFlight === 0 && onIdle !== undefined) closeNow();
      };
    },
    retire: (closed = () => undefined) => {
      onIdle = closed;
      if (inFlight === 0) closeNow();
    },
  };
}

/** Options for {@link channelArgs}. */
export interface ChannelArgsOptions {
  readonly maxMessageBytes: number;
  readonly keepalive: { readonly timeMs: number; readonly timeoutMs: number };
  /** The TLS server name (SNI) to send. */
  readonly servername: string;
}

/** The grpc-js channel options every Mesh channel uses. */
export function channelArgs(options: ChannelArgsOptions): ChannelOptions {
  return {
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    'grpc.keepalive_time_ms': positiveMs(options.keepalive.timeMs, 'keepalive.timeMs'),
    'grpc.keepalive_timeout_ms': positiveMs(options.keepalive.timeoutMs, 'keepalive.timeoutMs'),
    // Never re-send a call on our own: execute_command and write_file are not idempotent.
    'grpc.enable_retries': 0,
    // A channel of its own: credentials and shutdown of one client never touch another's.
    'grpc.use_local_subchannel_pool': 1,
    'grpc.initial_reconnect_backoff_ms': 500,
    'grpc.max_reconnect_backoff_ms': 5_000,
    'grpc.ssl_target_name_override': options.servername,
  };
}

/** A node:tls server identity check that verifies the peer's host certificate, remembering why it last refused one. */
export interface ServerIdentityCheck {
  readonly check: (servername: string, certificate: PeerCertificate) => Error | undefined;
  /** Why the last server certificate was refused; undefined after one was accepted. */
  readonly lastError: () => string | undefined;
}

/**
 * Called by node:tls in place of its own host name check (the address is often an IP the
 * certificate does not name; host certificates name hosts). The chain to the CA was already
 * verified by then; this adds cmdop's rules and, when `expected` is set, the host name.
 */
export function createServerIdentityCheck(caCertPem: string, expected: string | undefined, now: () => Date): ServerIdentityCheck {
  let lastError: string | undefined;
  const check = (_servername: string, certificate: PeerCertificate): Error | undefined => {
    try {
      const host = verifyHostCert(certificate.raw, caCertPem, { now: now() });
      if (expected !== undefined && host.hostName !== expected) {
        lastError = `the server's certificate names host "${host.hostName}", not "${expected}"`;
        return new Error(lastError);
      }
      lastError = undefined;
      return undefined;
    } catch (error) {
      lastError = error instanceof Error ? error.message : String(error);
      return new Error(lastError);
    }
  };
  return { check, lastError: () => lastError };
}

/** What {@link unaryCall} needs besides the method and request. */
export interface UnaryCallOptions {
  /** The peer's address, for messages. */
  readonly address: string;
  readonly timeoutMs: number;
  readonly signal?: AbortSignal;
  /** Why the channel's server identity check refused the server, if it did. */
  readonly serverIdentityError: () => string | undefined;
  /** A bearer credential sent as `authorization: Bearer ...` (callers without a host certificate). */
  readonly bearer?: string;
}

/** Makes one unary call on `channel`: encodes and checks the request, decodes and checks the reply, maps every failure to a CmdopError. */
export function unaryCall<M extends MeshMethod>(channel: Channel, method: M, request: MeshApi[M]['request'], options: UnaryCallOptions): Promise<MeshApi[M]['reply']> {
  const codec = CODECS[method];
  const wire = meshWire().methods[method];
  const { signal, timeoutMs, address } = options;
  return new Promise<MeshApi[M]['reply']>((resolveCall, reject) => {
    if (signal?.aborted === true) {
      reject(new CmdopError('tool_failed', `the ${method} call to ${address} was cancelled before it started`, { cause: signal.reason }));
      return;
    }
    let message: object;
    try {
      message = codec.encodeRequest(request);
    } catch (error) {
      reject(CmdopError.from(error, 'invalid_input'));
      return;
    }
    const leave = channel.enter();
    const onAbort = (): void => {
      pending.cancel();
    };
    const pending = channel.client.makeUnaryRequest<object, unknown>(
      wire.path,
      (value) => wire.serializeRequest(value),
      (bytes) => wire.deserializeResponse(bytes),
      message,
      metadataOf(options.bearer),
      { deadline: new Date(Date.now() + timeoutMs) },
      (error: ServiceError | null, response?: unknown) => {
        signal?.removeEventListener('abort', onAbort);
        leave();
        if (error !== null) {
          const cancelledByCaller = signal?.aborted === true && error.code === GrpcStatus.CANCELLED;
          const serverIdentityError = error.code === GrpcStatus.UNAVAILABLE ? options.serverIdentityError() : undefined;
          reject(fromGrpcStatus(error, { method, address, timeoutMs, cancelledByCaller, ...(serverIdentityError === undefined ? {} : { serverIdentityError }) }));
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
}

function metadataOf(bearer: string | undefined): Metadata {
  const metadata = new Metadata();
  if (bearer !== undefined) metadata.set('authorization', `Bearer ${bearer}`);
  return metadata;
}

/** Checks a duration in milliseconds: a whole number of at least 1; CmdopError('invalid_input') otherwise. */
export function positiveMs(value: number, name: string): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new CmdopError('invalid_input', `${name} must be a whole number of milliseconds of at least 1, not ${String(value)}`);
  }
  return value;
}
