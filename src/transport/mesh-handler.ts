/**
 * What the gRPC server hands to the daemon and what the client hands back to its caller: the
 * validated, frozen request of each RPC, the reply (the tool's own result plus the gate's
 * decision), and the {@link MeshHandler} interface the daemon implements.
 */
import type { Caller } from '../gate/caller.js';
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
 */
export interface MeshHandler {
  ping(caller: RemoteCaller, request: Readonly<Record<string, never>>, ctx: CallContext): Promise<PingReply>;
  executeCommand(caller: RemoteCaller, request: ExecuteCommandRequest, ctx: CallContext): Promise<ExecuteCommandReply>;
  readFile(caller: RemoteCaller, request: ReadFileRequest, ctx: CallContext): Promise<ReadFileReply>;
  writeFile(caller: RemoteCaller, request: WriteFileRequest, ctx: CallContext): Promise<WriteFileReply>;
  listDir(caller: RemoteCaller, request: ListDirRequest, ctx: CallContext): Promise<ListDirReply>;
}
