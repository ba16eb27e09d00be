/**
 * The local channel between a host's CLI/SDK and its own daemon (DESIGN.md §2): HTTP/1.1 with
 * JSON bodies over the unix socket `CMDOP_HOME/run/agent.sock` (mode 0600), every request
 * carrying the local token from `CMDOP_HOME/run/local.token` as `Authorization: Bearer TOKEN`.
 * The operator channel (ask prompts) is a WebSocket upgrade of the same socket at
 * {@link OPERATOR_PATH}, with the same header checked at the handshake.
 *
 * This file is the contract both sides compile against: the daemon serves it, `src/client`
 * calls it. Binary content travels base64-encoded in `content_base64` fields.
 */
import type { AuditDecision } from '../audit/audit-record.js';
import type { ErrorCode as CmdopErrorCode } from '../errors.js';
import type { GateDecision } from '../gate/types.js';

/** File names under `CMDOP_HOME/run/`. */
export const LOCAL_SOCKET_FILE = 'agent.sock';
export const LOCAL_TOKEN_FILE = 'local.token';
export const PID_FILE = 'agent.pid';

/** Routes (method and path). */
export const LOCAL_ROUTES = {
  status: { method: 'GET', path: '/v1/status' },
  shutdown: { method: 'POST', path: '/v1/shutdown' },
  call: { method: 'POST', path: '/v1/call' },
  peers: { method: 'GET', path: '/v1/peers' },
  sessionRules: { method: 'GET', path: '/v1/session-rules' },
  pending: { method: 'GET', path: '/v1/prompts' },
  answer: { method: 'POST', path: '/v1/prompts/answer' },
  oauthToken: { method: 'GET', path: '/v1/oauth/token' },
} as const;

/** The WebSocket path of the operator channel. */
export const OPERATOR_PATH = '/v1/operator';

/** GET /v1/status */
export interface StatusReply {
  readonly pid: number;
  readonly version: string;
  readonly uptime_ms: number;
  readonly host_name: string;
  /** `host:port` the mesh server listens on. */
  readonly listen_address: string;
  readonly workspace: { readonly id: string; readonly name: string; readonly is_ca: boolean };
  readonly mode: 'default' | 'strict' | 'bypass';
  readonly peers_online: number;
  readonly calls_served: number;
  readonly operators_connected: number;
}

/** The tools a caller can reach through the local channel. */
export type LocalTool = 'execute_command' | 'read_file' | 'write_file' | 'list_dir';

/** POST /v1/call: run one tool on `host` (this host's own name, or a peer's). */
export type CallRequest =
  | { readonly host: string; readonly tool: 'execute_command'; readonly request: { readonly command: string; readonly cwd?: string; readonly timeout_ms?: number } }
  | { readonly host: string; readonly tool: 'read_file'; readonly request: { readonly path: string; readonly offset?: number; readonly length?: number } }
  | { readonly host: string; readonly tool: 'write_file'; readonly request: { readonly path: string; readonly content_base64: string; readonly mode?: number } }
  | { readonly host: string; readonly tool: 'list_dir'; readonly request: { readonly path: string } };

/** The wire form of a gate decision. */
export type WireGateDecision = Pick<GateDecision, 'decision' | 'source' | 'reason'> & {
  readonly rule?: string | undefined;
  readonly rule_id?: string | undefined;
  readonly scope?: string | undefined;
};

export interface ExecuteCommandOutput {
  readonly exit_code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly stdout_truncated: boolean;
  readonly stderr_truncated: boolean;
  readonly timed_out: boolean;
  readonly duration_ms: number;
}

export interface ReadFileOutput {
  readonly path: string;
  readonly size: number;
  readonly offset: number;
  readonly bytes: number;
  readonly content_base64: string;
  readonly truncated: boolean;
  readonly eof: boolean;
}

export interface WriteFileOutput {
  readonly path: string;
  readonly bytes: number;
  readonly created: boolean;
}

export interface ListDirOutput {
  readonly path: string;
  readonly entries: readonly { readonly name: string; readonly type: 'file' | 'dir' | 'symlink' | 'other'; readonly size?: number }[];
  readonly truncated: boolean;
}

export interface CallOutputs {
  readonly execute_command: ExecuteCommandOutput;
  readonly read_file: ReadFileOutput;
  readonly write_file: WriteFileOutput;
  readonly list_dir: ListDirOutput;
}

/** 200 reply of POST /v1/call. */
export interface CallReply<T extends LocalTool = LocalTool> {
  /** The host that ran the tool, as its certificate names it. */
  readonly hostname: string;
  readonly tool: T;
  readonly decision: WireGateDecision;
  readonly result: CallOutputs[T];
}

/**
 * Every non-2xx reply: the error as the daemon (or the peer behind it) raised it. The HTTP
 * status is {@link HTTP_STATUS_OF}[code]; a refusal by a gate carries `details.decision`.
 */
export interface ErrorReply {
  readonly error: {
    readonly code: CmdopErrorCode;
    readonly message: string;
    readonly hint?: string;
    readonly details?: Readonly<Record<string, unknown>>;
  };
}

export const HTTP_STATUS_OF: Readonly<Record<CmdopErrorCode, number>> = {
  internal: 500,
  invalid_input: 400,
  denied: 403,
  not_found: 404,
  tool_failed: 422,
  config: 409,
  unavailable: 503,
  rate_limited: 429,
};

/** GET /v1/peers */
export interface PeerEntry {
  readonly name: string;
  readonly address: string;
  readonly online: boolean;
  /** ISO time of the last announce or successful call; null when never seen. */
  readonly last_seen: string | null;
  /** `roster` when learnt from the workspace, `manual` when set with `peers add`, `self` for this host. */
  readonly source: 'roster' | 'manual' | 'self';
}
export interface PeersReply {
  readonly peers: readonly PeerEntry[];
}

/** GET /v1/oauth/token: a fresh access token of this machine's OAuth session (the daemon refreshes it). */
export interface OauthTokenReply {
  /** Secret: sent only to the holder of the local token, never logged. */
  readonly access_token: string;
  readonly expires_at: string;
  readonly subject: string | null;
}

/** GET /v1/session-rules */
export interface SessionRulesReply {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly ask: readonly string[];
}

/** One request waiting for the operator. */
export interface PendingPrompt {
  readonly id: string;
  readonly caller_host: string;
  readonly caller_principal: string;
  readonly tool: string;
  readonly operation: string | null;
  readonly target: string;
  /** What asked: the rule as written, or `mode default` / `mode strict`. */
  readonly asked_by: string;
  readonly reason: string;
  readonly created_at: string;
  readonly expires_at: string;
}

/** GET /v1/prompts */
export interface PendingReply {
  readonly operators_connected: number;
  readonly prompts: readonly PendingPrompt[];
}

/** How long an answer holds: this call only, the daemon's session, or a global rule for exactly this target. */
export type AnswerScope = 'once' | 'session' | 'global';

/** POST /v1/prompts/answer, and the operator channel's `answer` message. */
export interface AnswerRequest {
  readonly id: string;
  readonly decision: 'allow' | 'deny';
  readonly scope?: AnswerScope;
}
export interface AnswerReply {
  readonly id: string;
  readonly decision: 'allow' | 'deny';
  readonly scope: AnswerScope;
  /** The rule added for `session` or `global` answers. */
  readonly rule?: string;
}

/** How a prompt ended, as the audit log records it. */
export type PromptOutcome = Extract<AuditDecision, 'ask_allowed' | 'ask_denied' | 'ask_timeout'>;

/** Operator channel, daemon → operator. */
export type OperatorEvent =
  | { readonly type: 'snapshot'; readonly prompts: readonly PendingPrompt[] }
  | { readonly type: 'prompt'; readonly prompt: PendingPrompt }
  | { readonly type: 'resolved'; readonly id: string; readonly outcome: PromptOutcome }
  | { readonly type: 'answered'; readonly id: string; readonly rule?: string }
  | { readonly type: 'error'; readonly id?: string; readonly message: string; readonly code?: CmdopErrorCode };

/** Operator channel, operator → daemon. */
export type OperatorMessage = { readonly type: 'answer' } & AnswerRequest;
