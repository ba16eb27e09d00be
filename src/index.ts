/**
 * cmdop-mesh as a library: a client of this host's daemon, which calls tools on this host or
 * its peers through their gates, and the one error model every failure comes back in.
 */
export {
  createClient,
  localRequest,
  shellExitCode,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  EXEC_GRACE_MS,
  type CallOptions,
  type ClientOptions,
  type CmdopClient,
  type ExecOptions,
  type LocalRequestOptions,
  type LocalRoute,
  type ReadFileMetadata,
  type ReadFileOptions,
  type ReadFileReply,
  type WriteFileOptions,
} from './client/index.js';
export { CmdopError, exitCodeFor, type CmdopErrorOptions, type ErrorCode } from './errors.js';
export {
  LOCAL_ROUTES,
  type CallReply,
  type CallRequest,
  type ErrorReply,
  type ExecuteCommandOutput,
  type ListDirOutput,
  type LocalTool,
  type PeerEntry,
  type PeersReply,
  type ReadFileOutput,
  type SessionRulesReply,
  type StatusReply,
  type WireGateDecision,
  type WriteFileOutput,
} from './transport/local-api.js';
