/**
 * The Mesh gRPC server: mutual TLS with the workspace CA (a client without a certificate of
 * this workspace fails the handshake), the caller taken from the verified peer certificate
 * only, requests validated before the handler sees them, deadlines and cancellation turned
 * into an AbortSignal, message size limits and keepalive set, every error mapped by
 * `toGrpcStatus`.
 */
import { Server, ServerCredentials, type ServerUnaryCall, type ServiceDefinition, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { CmdopError } from '../errors.js';
import type { CallContext, MeshHandler, RemoteCaller } from './mesh-handler.js';
import { MalformedMessage, meshWire } from './mesh-proto.js';
import { authenticatePeer } from './peer-identity.js';
import { toGrpcStatus } from './grpc-status.js';
import { CODECS, type MeshApi } from './wire-codec.js';
import { MESH_METHODS, type MeshMethod, type WireResponse } from './wire-types.js';

/** Default largest message accepted or sent: 8 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Server keepalive: ping an idle connection every 30 s, drop it if no answer within 10 s. */
const SERVER_KEEPALIVE = { timeMs: 30_000, timeoutMs: 10_000 };

/** This host's TLS material: its key and certificate, and the workspace CA it trusts. */
export interface MeshTlsOptions {
  readonly keyPem: string;
  readonly certPem: string;
  readonly caCertPem: string;
}

/** A call refused before the handler ran, for the audit log. */
export interface RefusedCall {
  readonly method: MeshMethod;
  readonly reason: string;
  /** The peer's address as grpc-js reports it (not evidence of identity). */
  readonly peer: string;
}

/** Options for {@link createMeshServer}. */
export interface MeshServerOptions {
  /** Address to listen on, such as `127.0.0.2` or `::1`. */
  readonly host: string;
  /** Port; 0 picks a free one. */
  readonly port: number;
  readonly tls: MeshTlsOptions;
  readonly handler: MeshHandler;
  /** Largest message received or sent, in bytes (default 8 MiB); bigger ones get RESOURCE_EXHAUSTED. */
  readonly maxMessageBytes?: number;
  /** The clock used to check client certificates (default: the current time). */
  readonly now?: () => Date;
  /** Told of every call refused before the handler (unauthenticated or malformed). */
  readonly onRefused?: (refused: RefusedCall) => void;
  /** Told of every handler error that was not a CmdopError (sent to the caller as a bare 'internal'). */
  readonly onInternalError?: (error: unknown, method: MeshMethod) => void;
}

/** A running Mesh server. */
export interface MeshServer {
  /** `host:port` as bound. */
  readonly address: string;
  readonly port: number;
  /**
   * Stops accepting calls, lets in-flight calls finish for up to `graceMs`, then cuts the rest
   * (their handlers' signals abort). `close(0)` cuts at once.
   */
  close(graceMs?: number): Promise<void>;
}

type HandlerMethod = keyof MeshHandler;

const HANDLER_METHOD: { readonly [M in MeshMethod]: HandlerMethod } = {
  Ping: 'ping',
  ExecuteCommand: 'executeCommand',
  ReadFile: 'readFile',
  WriteFile: 'writeFile',
  ListDir: 'listDir',
};

/** Starts a Mesh server and resolves once it listens. */
export async function createMeshServer(options: MeshServerOptions): Promise<MeshServer> {
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  if (!Number.isSafeInteger(maxMessageBytes) || maxMessageBytes < 1024) {
    throw new CmdopError('config', `maxMessageBytes must be a whole number of at least 1024, not ${String(maxMessageBytes)}`);
  }
  const server = new Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': maxMessageBytes,
    'grpc.keepalive_time_ms': SERVER_KEEPALIVE.timeMs,
    'grpc.keepalive_timeout_ms': SERVER_KEEPALIVE.timeoutMs,
  });
  server.addService(serviceDefinition(), implementation(options));

  const credentials = ServerCredentials.createSsl(
    Buffer.from(options.tls.caCertPem),
    [{ private_key: Buffer.from(options.tls.keyPem), cert_chain: Buffer.from(options.tls.certPem) }],
    // Require a client certificate and verify it against the workspace CA at the handshake.
    true,
  );
  const host = options.host.includes(':') && !options.host.startsWith('[') ? `[${options.host}]` : options.host;
  const port = await new Promise<number>((resolvePort, reject) => {
    server.bindAsync(`${host}:${options.port}`, credentials, (error, bound) => {
      if (error === null) resolvePort(bound);
      else reject(new CmdopError('config', `cannot listen on ${host}:${options.port}: ${error.message}`, { cause: error, hint: 'Pick another port, or stop whatever uses this one.' }));
    });
  });

  let closing: Promise<void> | undefined;
  return {
    address: `${host}:${port}`,
    port,
    close(graceMs = 5_000): Promise<void> {
      closing ??= shutdown(server, graceMs);
      return closing;
    },
  };
}

function shutdown(server: Server, graceMs: number): Promise<void> {
  if (graceMs <= 0) {
    server.forceShutdown();
    return Promise.resolve();
  }
  return new Promise((resolveClose) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolveClose();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolveClose();
    });
  });
}

/** The grpc-js service definition, built from the loaded proto with never-throwing deserialisers. */
function serviceDefinition(): ServiceDefinition {
  const wire = meshWire();
  const definition: Record<string, ServiceDefinition[string]> = {};
  for (const method of Object.keys(MESH_METHODS) as MeshMethod[]) {
    const m = wire.methods[method];
    definition[method] = {
      path: m.path,
      requestStream: false,
      responseStream: false,
      requestSerialize: (value: object) => m.serializeRequest(value),
      requestDeserialize: (bytes: Buffer) => m.deserializeRequest(bytes),
      responseSerialize: (value: object) => m.serializeResponse(value),
      responseDeserialize: (bytes: Buffer) => m.deserializeResponse(bytes),
      originalName: method,
    };
  }
  return definition;
}

function implementation(options: MeshServerOptions): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const method of Object.keys(MESH_METHODS) as MeshMethod[]) {
    impl[method] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
      serveUnary(method, call, callback, options);
    };
  }
  return impl;
}

function serveUnary<M extends MeshMethod>(method: M, call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<WireResponse<M>>, options: MeshServerOptions): void {
  const controller = new AbortController();
  const cancelled = (): void => {
    controller.abort(new CmdopError('unavailable', `the caller cancelled the ${method} call, or its connection dropped`));
  };
  call.on('cancelled', cancelled);
  // grpc-js answers DEADLINE_EXCEEDED itself but does not always tell the handler; this timer does.
  const deadline = deadlineOf(call.getDeadline());
  const timer =
    deadline === undefined
      ? undefined
      : setTimeout(() => {
          controller.abort(new CmdopError('unavailable', `the ${method} call passed its deadline`));
        }, Math.max(0, deadline.getTime() - Date.now()));
  const ctx: CallContext = Object.freeze({ signal: controller.signal, ...(deadline === undefined ? {} : { deadline }) });

  const refuse = (error: CmdopError): never => {
    options.onRefused?.({ method, reason: error.message, peer: call.getPeer() });
    throw error;
  };

  const run = async (): Promise<WireResponse<M>> => {
    const now = options.now?.() ?? new Date();
    let caller: RemoteCaller;
    try {
      caller = authenticatePeer(call.getAuthContext(), options.tls.caCertPem, now);
    } catch (error) {
      return refuse(CmdopError.from(error));
    }
    if (call.request instanceof MalformedMessage) {
      return refuse(new CmdopError('invalid_input', `the ${method} request is not a valid ${MESH_METHODS[method].request} message`));
    }
    let request: MeshApi[M]['request'];
    try {
      request = CODECS[method].decodeRequest(call.request);
    } catch (error) {
      return refuse(CmdopError.from(error, 'invalid_input'));
    }
    const reply = await dispatch(options.handler, method, caller, request, ctx);
    return CODECS[method].encodeResponse(reply);
  };

  run()
    .then(
      (response) => {
        callback(null, response);
      },
      (error: unknown) => {
        if (!(error instanceof CmdopError)) options.onInternalError?.(error, method);
        // An error that is not a CmdopError may carry anything (paths, internals): its text stays here.
        const mapped = error instanceof CmdopError ? error : new CmdopError('internal', `the peer failed unexpectedly while serving ${method}; its agent log has the details`);
        const status = toGrpcStatus(mapped);
        callback({ code: status.code, details: status.details, metadata: status.metadata, name: 'CmdopError', message: status.details });
      },
    )
    .finally(() => {
      if (timer !== undefined) clearTimeout(timer);
      call.removeListener('cancelled', cancelled);
    });
}

/** Calls the handler method of `method`; one switch so each call is typed exactly. */
async function dispatch<M extends MeshMethod>(handler: MeshHandler, method: M, caller: RemoteCaller, request: MeshApi[M]['request'], ctx: CallContext): Promise<MeshApi[M]['reply']> {
  const name = HANDLER_METHOD[method];
  // The handler table and MeshApi pair each RPC with its handler method one to one.
  const fn = handler[name].bind(handler) as (caller: RemoteCaller, request: MeshApi[M]['request'], ctx: CallContext) => Promise<MeshApi[M]['reply']>;
  return fn(caller, request, ctx);
}

function deadlineOf(deadline: Date | number): Date | undefined {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}
