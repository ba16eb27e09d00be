/**
 * The Mesh gRPC server: TLS that asks every client for a certificate of the workspace CA, the
 * caller taken from the verified peer certificate only, requests validated before the handler
 * sees them, deadlines and cancellation turned into an AbortSignal, message size limits and
 * keepalive set, every error mapped by `toGrpcStatus`.
 *
 * The handshake requests a client certificate but does not insist on one, because a host that
 * is joining has none yet: every RPC except Join (OPEN_METHODS) is then refused with
 * UNAUTHENTICATED before its handler unless the peer certificate verifies (authenticatePeer).
 */
import { Server, type ServerUnaryCall, type ServiceDefinition, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { CmdopError } from '../errors.js';
import type { MeshHandler, PeerCallContext, RemoteCaller } from './mesh-handler.js';
import { MalformedMessage, meshWire } from './mesh-proto.js';
import { authenticatePeer, type PeerAuthContext } from './peer-identity.js';
import { toGrpcStatus } from './grpc-status.js';
import { checkIdentity, createIdentityCredentials, type HostIdentityPair } from './server-identity.js';

export type { HostIdentityPair } from './server-identity.js';
import { CODECS, type MeshApi } from './wire-codec.js';
import { BEARER_METHODS, MESH_METHODS, OPEN_METHODS, type MeshMethod, type WireResponse } from './wire-types.js';

/** Default largest message accepted or sent: 8 MiB. */
export const DEFAULT_MAX_MESSAGE_BYTES = 8 * 1024 * 1024;

/** Server keepalive: ping an idle connection every 30 s, drop it if no answer within 10 s. */
const SERVER_KEEPALIVE = { timeMs: 30_000, timeoutMs: 10_000 };

/** This host's TLS material: its key and certificate, and the workspace CA it trusts. */
export interface MeshTlsOptions extends HostIdentityPair {
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
  /**
   * Authenticates a caller that presents no client certificate but a bearer credential
   * (`authorization: Bearer ...`): an API key, an OAuth access token or a share token. Only
   * the methods in BEARER_METHODS accept one; without this option none does. It must resolve
   * with the caller or reject (a CmdopError('denied') saying why, never quoting the credential).
   */
  readonly authenticateBearer?: (credential: string, call: { readonly method: MeshMethod; readonly peer: string }) => Promise<RemoteCaller>;
  /** Told of every handler error that was not a CmdopError (sent to the caller as a bare 'internal'). */
  readonly onInternalError?: (error: unknown, method: MeshMethod) => void;
}

/** A running Mesh server. */
export interface MeshServer {
  /** `host:port` as bound. */
  readonly address: string;
  readonly port: number;
  /**
   * Replaces this host's key and certificate (after a renewal): connections made from now on
   * get the new certificate; open ones keep the old until they close. The pair is checked first
   * (the key matches, the certificate is signed by the workspace CA),
   * so a bad pair throws CmdopError('config') and the server keeps serving with the old one.
   */
  updateIdentity(identity: HostIdentityPair): void;
  /**
   * Stops accepting calls, lets in-flight calls finish for up to `graceMs`, then cuts the rest
   * (their handlers' signals abort). `close(0)` cuts at once.
   */
  close(graceMs?: number): Promise<void>;
}

/** How one RPC reaches its handler method: open (no caller, Join only) or with the verified caller. */
type Route<M extends MeshMethod> =
  | { readonly open: true; serve(handler: MeshHandler, request: MeshApi[M]['request'], ctx: PeerCallContext): Promise<MeshApi[M]['reply']> }
  | { readonly open: false; serve(handler: MeshHandler, caller: RemoteCaller, request: MeshApi[M]['request'], ctx: PeerCallContext): Promise<MeshApi[M]['reply']> };

/** Each RPC's handler method, typed one to one; `open` must agree with OPEN_METHODS (checked at start-up). */
const HANDLER_METHOD: { readonly [M in MeshMethod]: Route<M> } = {
  Ping: { open: false, serve: (handler, caller, request, ctx) => handler.ping(caller, request, ctx) },
  ExecuteCommand: { open: false, serve: (handler, caller, request, ctx) => handler.executeCommand(caller, request, ctx) },
  ReadFile: { open: false, serve: (handler, caller, request, ctx) => handler.readFile(caller, request, ctx) },
  WriteFile: { open: false, serve: (handler, caller, request, ctx) => handler.writeFile(caller, request, ctx) },
  ListDir: { open: false, serve: (handler, caller, request, ctx) => handler.listDir(caller, request, ctx) },
  Join: { open: true, serve: (handler, request, ctx) => handler.join(request, ctx) },
  Renew: { open: false, serve: (handler, caller, request, ctx) => handler.renew(caller, request, ctx) },
  Announce: { open: false, serve: (handler, caller, request, ctx) => handler.announce(caller, request, ctx) },
  Roster: { open: false, serve: (handler, caller, request, ctx) => handler.roster(caller, request, ctx) },
};

for (const method of Object.keys(MESH_METHODS) as MeshMethod[]) {
  // A security property, so a disagreement fails loudly at import rather than quietly opening a method.
  if (HANDLER_METHOD[method].open !== OPEN_METHODS.has(method)) throw new Error(`HANDLER_METHOD and OPEN_METHODS disagree about ${method}`);
}

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
  const identity = createIdentityCredentials(checkIdentity(options.tls));
  server.addService(serviceDefinition(), implementation(options));

  const credentials = identity.credentials;
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
    updateIdentity(pair: HostIdentityPair): void {
      identity.update(checkIdentity({ keyPem: pair.keyPem, certPem: pair.certPem, caCertPem: options.tls.caCertPem }));
    },
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
  const ctx: PeerCallContext = Object.freeze({ signal: controller.signal, peer: call.getPeer(), ...(deadline === undefined ? {} : { deadline }) });

  const refuse = (error: CmdopError): never => {
    options.onRefused?.({ method, reason: error.message, peer: call.getPeer() });
    throw error;
  };

  const run = async (): Promise<WireResponse<M>> => {
    const route: Route<M> = HANDLER_METHOD[method];
    let caller: RemoteCaller | undefined;
    if (!route.open) {
      try {
        caller = await authenticateCaller(method, call, options);
      } catch (error) {
        return refuse(CmdopError.from(error));
      }
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
    const reply = route.open ? await route.serve(options.handler, request, ctx) : await route.serve(options.handler, authenticated(caller), request, ctx);
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

/**
 * The caller of a method that is not open: the verified client certificate, or else a bearer
 * credential on the methods that take one. A call with both is refused, so which identity
 * acts is never a guess.
 */
async function authenticateCaller(method: MeshMethod, call: ServerUnaryCall<unknown, unknown>, options: MeshServerOptions): Promise<RemoteCaller> {
  // node:tls reports `{}` for a client without a certificate, whatever its types claim.
  const auth: PeerAuthContext = call.getAuthContext();
  const bearer = bearerOf(call.metadata.get('authorization'));
  const hasCertificate = auth.transportSecurityType === 'ssl' && (auth.sslPeerCertificate?.raw?.length ?? 0) > 0;
  if (bearer === undefined || options.authenticateBearer === undefined) {
    return authenticatePeer(auth, options.tls.caCertPem, options.now?.() ?? new Date());
  }
  if (hasCertificate) {
    throw new CmdopError('denied', 'refused before the gate: the call presented both a host certificate and a bearer credential', {
      hint: 'A host calls with its certificate; a user, program or guest with one credential and no certificate.',
      details: { stage: 'authentication' },
    });
  }
  if (!BEARER_METHODS.has(method)) {
    throw new CmdopError('denied', `refused before the gate: ${method} is for hosts of the workspace, and a bearer credential is not one`, {
      hint: 'Only tool calls (exec, read, write, ls), Ping and Roster take an API key, an OAuth token or a share token.',
      details: { stage: 'authentication' },
    });
  }
  if (bearer === '') {
    throw new CmdopError('denied', 'refused before the gate: the authorization header is not "Bearer <credential>"', { details: { stage: 'authentication' } });
  }
  return options.authenticateBearer(bearer, { method, peer: call.getPeer() });
}

/** The credential of an `authorization: Bearer ...` header; '' when the header is malformed, undefined when absent. */
function bearerOf(values: readonly (string | Buffer)[]): string | undefined {
  if (values.length === 0) return undefined;
  const [value] = values;
  if (values.length > 1 || typeof value !== 'string') return '';
  const match = /^Bearer ([\x21-\x7e]{1,8192})$/.exec(value);
  return match?.[1] ?? '';
}

/** The caller of a method that is not open; it was authenticated above, so its absence is a bug, never a pass. */
function authenticated(caller: RemoteCaller | undefined): RemoteCaller {
  if (caller === undefined) throw new CmdopError('internal', 'a call reached its handler without an authenticated caller');
  return caller;
}

function deadlineOf(deadline: Date | number): Date | undefined {
  const ms = deadline instanceof Date ? deadline.getTime() : deadline;
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}
