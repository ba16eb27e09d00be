/**
 * What the gRPC server hands to the daemon and what the client hands back to its caller: the
 * validated, frozen request of each RPC, the reply (the tool's own result plus the gate's
 * decision, or the membership answer), and the {@link MeshHandler} interface the daemon implements.
 */
import type { Caller } from '../gate/caller.js';
import type { OidcConfig } from '../identity/oidc-config.js';
import type { GateDecision } from '../gate/types.js';
import type { ExecuteCommandResult } from '../tools/execute-command.js';
import type { ListDirResult } from '../tools/list-dir.js';
import type { ReadFileResult } from '../tools/read-file.js';
import type { WriteFileResult } from '../tools/write-file.js';

/** The authenticated caller of one incoming call: always a remote host, named by its verified certificate. */
export type RemoteCaller = Extract<Caller, { readonly kind: 'remote' }>;

/** Per-call context given to the handler. */
export interface CallContext {
  /** Aborted when the client cancels, the deadline passes, the connection drops or the server shuts down. */
  readonly signal: AbortSignal;
  /** The client's deadline, when it set one. */
  readonly deadline?: Date;
}

/**
 * The context of a call whose handler may want the network address it came from (Join, to
 * rate-limit and log attempts; Announce, to compare the announced address with the observed one).
 */
export interface PeerCallContext extends CallContext {
  /** The peer's address as grpc-js reports it (`ipv4:1.2.3.4:5678`, `ipv6:[::1]:5678`): a log and rate-limit key, never evidence of identity. */
  readonly peer: string;
}

/** An execute_command call: the command line, the working directory and the run time wanted. */
export interface ExecuteCommandRequest {
  readonly command: string;
  /** Default: the receiving user's home. */
  readonly cwd?: string;
  /** Default: the receiver's (30 s); at most 600 000. */
  readonly timeout_ms?: number;
}

/** A read_file call: the path and the byte range wanted. */
export interface ReadFileRequest {
  readonly path: string;
  /** First byte; 0 when not given. */
  readonly offset?: number;
  /** Bytes wanted; default the rest of the file, within the receiver's cap. */
  readonly length?: number;
}

/** A write_file call: the path, the new content and the file mode. */
export interface WriteFileRequest {
  readonly path: string;
  readonly content: Buffer;
  /** Permission bits; default 0o644. */
  readonly mode?: number;
}

/** A list_dir call. */
export interface ListDirRequest {
  readonly path: string;
}

/** The answer to Ping. */
export interface PingReply {
  readonly host_name: string;
  readonly version: string;
}

/** A Join call: the one-time token, the host name asked for, and a CSR for that name. */
export interface JoinRequest {
  /** The whole join token, secret included; the handler redeems it. Never log it. */
  readonly token: string;
  /** The host name asked for, valid and lower-cased by the codec. */
  readonly host_name: string;
  /** PKCS#10 request, PEM (checked to look like one and to be at most 16 KiB; the signer checks the rest). */
  readonly csr_pem: string;
}

/** What a joining host receives: its certificate, the CA, and where the workspace's CA host is. */
export interface JoinReply {
  /** The new host certificate, PEM. */
  readonly cert_pem: string;
  /** The workspace CA certificate, PEM. */
  readonly ca_cert_pem: string;
  /** 32 lowercase hex characters. */
  readonly workspace_id: string;
  readonly workspace_name: string;
  /** The CA host's name. */
  readonly ca_host_name: string;
  /** The CA host's `HOST:PORT`. */
  readonly ca_address: string;
}

/** A Renew call: a CSR for the caller's own host name (the name in its verified certificate). */
export interface RenewRequest {
  readonly csr_pem: string;
}

/** The renewed host certificate. */
export interface RenewReply {
  readonly cert_pem: string;
}

/** An Announce call: where the caller's daemon listens. */
export interface AnnounceRequest {
  /** `HOST:PORT`, port 1 to 65535 (IPv6 in brackets). */
  readonly address: string;
}

/** One host of the workspace as the answering host knows it. */
export interface RosterEntry {
  /** The host name. */
  readonly name: string;
  /** `HOST:PORT`; absent when not known. */
  readonly address?: string;
  /** ISO 8601 time the host was last heard from; absent when never. */
  readonly last_seen?: string;
  readonly online: boolean;
}

/** The roster: every host the answering host knows of, and the hosts revoked from the workspace. */
export interface RosterReply {
  readonly peers: readonly RosterEntry[];
  /** Host names revoked from the workspace (valid, lower case, at most 10 000): every host refuses their calls. */
  readonly revoked: readonly string[];
}

/** One workspace API key as a host needs it to verify the key: its hash, never the key. */
export interface ApiKeyEntry {
  readonly id: string;
  readonly name: string;
  /** sha256 over the key's payload segment, `.`, and its secret; 64 lowercase hex characters. */
  readonly secret_hash: string;
  /** ISO 8601, or null when the key does not expire. */
  readonly expires_at: string | null;
  /** ISO 8601, or null unless the key was revoked. */
  readonly revoked_at: string | null;
}

export type { OidcConfig } from '../identity/oidc-config.js';

/** What the CA host tells hosts so they can verify the credentials of callers that are not hosts. */
export interface WorkspaceCredentials {
  readonly api_keys: readonly ApiKeyEntry[];
  readonly oidc: OidcConfig | null;
}

/**
 * The answer to Announce: the roster after the announcement, the revoked host names, and the
 * workspace credentials (key hashes, the OpenID provider). Only hosts announce, so only hosts
 * ever receive the credentials.
 */
export interface AnnounceReply extends RosterReply {
  readonly credentials: WorkspaceCredentials;
}

/** How the receiver's gate decided a call that ran. */
export interface Decided {
  readonly decision: GateDecision;
}

/** The result of a remote execute_command. */
export type ExecuteCommandReply = ExecuteCommandResult & Decided;
/** The result of a remote read_file. */
export type ReadFileReply = ReadFileResult & Decided;
/** The result of a remote write_file. */
export type WriteFileReply = WriteFileResult & Decided;
/** The result of a remote list_dir. */
export type ListDirReply = ListDirResult & Decided;

/**
 * The daemon's side of the Mesh service. Each method gets the verified caller, the validated
 * request and the call context; it resolves with the reply or rejects with a CmdopError (a
 * refusal by the gate is CmdopError('denied')), which the server maps with `toGrpcStatus`.
 *
 * `join` alone has no caller: a joining host has no certificate yet, so the handler itself must
 * authenticate the call by redeeming the token (and refuse with CmdopError('denied') otherwise).
 * `renew`, `announce` and `roster` are not gated and run no tool; their caller is verified.
 */
export interface MeshHandler {
  ping(caller: RemoteCaller, request: Readonly<Record<string, never>>, ctx: CallContext): Promise<PingReply>;
  executeCommand(caller: RemoteCaller, request: ExecuteCommandRequest, ctx: CallContext): Promise<ExecuteCommandReply>;
  readFile(caller: RemoteCaller, request: ReadFileRequest, ctx: CallContext): Promise<ReadFileReply>;
  writeFile(caller: RemoteCaller, request: WriteFileRequest, ctx: CallContext): Promise<WriteFileReply>;
  listDir(caller: RemoteCaller, request: ListDirRequest, ctx: CallContext): Promise<ListDirReply>;
  join(request: JoinRequest, ctx: PeerCallContext): Promise<JoinReply>;
  renew(caller: RemoteCaller, request: RenewRequest, ctx: CallContext): Promise<RenewReply>;
  announce(caller: RemoteCaller, request: AnnounceRequest, ctx: PeerCallContext): Promise<AnnounceReply>;
  roster(caller: RemoteCaller, request: Readonly<Record<string, never>>, ctx: CallContext): Promise<RosterReply>;
}
