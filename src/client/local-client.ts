/**
 * The CLI's and SDK's side of the local channel (DESIGN.md §2, src/transport/local-api.ts):
 * HTTP/1.1 with JSON over the unix socket `CMDOP_HOME/run/agent.sock`, the local token as a
 * bearer header. Every failure comes back as a CmdopError: the daemon's own error replies keep
 * their code, message, hint and details; a daemon that is absent, dies mid-reply or does not
 * answer in time is `unavailable`, promptly, never a hang.
 */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import type { Stats } from 'node:fs';
import { lstat } from 'node:fs/promises';
import { constants as osConstants } from 'node:os';
import { join } from 'node:path';
import { resolveCmdopHome, runDir } from '../config/cmdop-home.js';
import { readSecureFile } from '../config/secure-file.js';
import { CmdopError, isErrorCode, systemErrorCode, type CmdopErrorOptions, type ErrorCode } from '../errors.js';
import {
  HTTP_STATUS_OF,
  LOCAL_ROUTES,
  LOCAL_SOCKET_FILE,
  LOCAL_TOKEN_FILE,
  type CallReply,
  type CallRequest,
  type ExecuteCommandOutput,
  type LocalTool,
  type PeersReply,
  type ReadFileOutput,
  type SessionRulesReply,
  type StatusReply,
} from '../transport/local-api.js';

/** Deadline of a request to the daemon when none is given. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
/**
 * Deadline of a tool call when none is given: a remote gate may hold a call while it asks its
 * operator (`permissions.ask_timeout`, 60 s by default), so tool calls get longer than status.
 */
export const DEFAULT_CALL_TIMEOUT_MS = 90_000;
/**
 * How much longer than the command's own timeout an exec call may take: the receiving gate may
 * hold it while its operator answers (60 s by default), plus gate, audit and transport.
 */
export const EXEC_GRACE_MS = 70_000;
/** The command timeout the daemon applies when a call gives none (src/tools/execute-command.ts). */
const DAEMON_EXEC_TIMEOUT_MS = 30_000;
/** A reply larger than this is refused: the tools cap their output well below it (64 MiB per stream). */
const MAX_REPLY_BYTES = 512 * 1024 * 1024;

/** One route of the local API, as {@link LOCAL_ROUTES} lists them. */
export type LocalRoute = (typeof LOCAL_ROUTES)[keyof typeof LOCAL_ROUTES];

/** Where the daemon is and how long to wait for it. */
export interface LocalRequestOptions {
  /** CMDOP_HOME; default from the environment (`CMDOP_HOME`, else `~/.cmdop`). */
  readonly home?: string;
  /** The daemon's socket; default `HOME/run/agent.sock`. */
  readonly socketPath?: string;
  /** The local token; default read from `HOME/run/local.token` (which must be 0600 and yours). */
  readonly token?: string;
  /** Deadline for the whole exchange, connect to last byte; default {@link DEFAULT_REQUEST_TIMEOUT_MS}. */
  readonly timeoutMs?: number;
  /** Cancels the request; the daemon sees the connection close. */
  readonly signal?: AbortSignal;
}

/**
 * Sends one request to the local daemon and returns its 2xx JSON reply; throws the CmdopError the
 * daemon replied with, or `unavailable` when it cannot be reached or stops mid-reply.
 */
export async function localRequest<T>(options: LocalRequestOptions, route: LocalRoute, body?: unknown): Promise<T> {
  throwIfAborted(options.signal);
  const timeoutMs = options.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new CmdopError('invalid_input', `timeoutMs must be a positive number of milliseconds, not ${String(timeoutMs)}`);
  }
  const endpoint = await resolveEndpoint(options);
  throwIfAborted(options.signal);
  const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body), 'utf8');
  const reply = await exchange({ ...endpoint, route, payload, timeoutMs, signal: options.signal });
  // The daemon is this user's own process behind a 0600 socket; its replies are trusted in shape.
  return decodeReply(reply) as T;
}

/** Options of {@link createClient}. */
export interface ClientOptions {
  /** CMDOP_HOME; default from the environment (`CMDOP_HOME`, else `~/.cmdop`). */
  readonly home?: string;
  /**
   * Deadline of each request in milliseconds; default 30 s for status, peers and session rules,
   * 90 s for tool calls. An exec call always gets at least its command timeout plus 5 s.
   */
  readonly timeoutMs?: number;
  /** The daemon's socket, when not `HOME/run/agent.sock`. */
  readonly socketPath?: string;
  /** The local token, when not read from `HOME/run/local.token`. */
  readonly token?: string;
  /**
   * Makes the tool calls (exec, read, write, ls) some other way than through the local daemon:
   * with a bearer credential straight to the host (see callWithBearer). Status, peers and
   * session rules still ask the daemon.
   */
  readonly callTool?: (call: CallRequest, options: CallOptions) => Promise<CallReply>;
}

/** Per-call options every client method takes. */
export interface CallOptions {
  /** Cancels the call; the daemon sees the connection close. */
  readonly signal?: AbortSignal;
  /** Deadline of this call's HTTP exchange in milliseconds, overriding the client's. */
  readonly deadlineMs?: number;
}

export interface ExecOptions extends CallOptions {
  /** Working directory on the host. */
  readonly cwd?: string;
  /** How long the command may run on the host, in milliseconds (the host's default is 30 s, its maximum 600 s). */
  readonly timeoutMs?: number;
}

export interface ReadFileOptions extends CallOptions {
  /** First byte to read. */
  readonly offset?: number;
  /** How many bytes to read at most (the host caps one read; `result.truncated` says when it did). */
  readonly length?: number;
}

export interface WriteFileOptions extends CallOptions {
  /** Permission bits of the file, such as 0o644. */
  readonly mode?: number;
}

/** Metadata of a read, without the base64 text the wire carries. */
export type ReadFileMetadata = Omit<ReadFileOutput, 'content_base64'>;

/** A read's reply: who ran it and why it was allowed, the metadata, and the bytes. */
export interface ReadFileReply extends Omit<CallReply<'read_file'>, 'result'> {
  readonly result: ReadFileMetadata;
  readonly content: Buffer;
}

/** A typed client of the local daemon; every method throws CmdopError. */
export interface CmdopClient {
  /** Runs a shell command line on `host` (this host's name or a peer's). */
  exec(host: string, command: string, options?: ExecOptions): Promise<CallReply<'execute_command'>>;
  /** Reads (part of) a file on `host`; the bytes come back as `content`. */
  readFile(host: string, path: string, options?: ReadFileOptions): Promise<ReadFileReply>;
  /** Writes a whole file on `host`, replacing it if it exists. A string is written as UTF-8. */
  writeFile(host: string, path: string, content: Uint8Array | string, options?: WriteFileOptions): Promise<CallReply<'write_file'>>;
  /** Lists a directory on `host`. */
  listDir(host: string, path: string, options?: CallOptions): Promise<CallReply<'list_dir'>>;
  /** The local daemon's state. */
  status(options?: CallOptions): Promise<StatusReply>;
  /** The peers the local daemon knows. */
  peers(options?: CallOptions): Promise<PeersReply>;
  /** The local daemon's session rules. */
  sessionRules(options?: CallOptions): Promise<SessionRulesReply>;
}

/** Creates a client of this host's daemon; nothing is read or connected until the first call. */
export function createClient(options: ClientOptions = {}): CmdopClient {
  const base = {
    ...(options.home === undefined ? {} : { home: options.home }),
    ...(options.socketPath === undefined ? {} : { socketPath: options.socketPath }),
    ...(options.token === undefined ? {} : { token: options.token }),
  };
  const send = <T>(route: LocalRoute, body: unknown, call: CallOptions, defaultTimeoutMs: number): Promise<T> =>
    localRequest<T>(
      { ...base, timeoutMs: call.deadlineMs ?? options.timeoutMs ?? defaultTimeoutMs, ...(call.signal === undefined ? {} : { signal: call.signal }) },
      route,
      body,
    );
  const callTool = async <K extends LocalTool>(call: CallRequest & { readonly tool: K }, callOptions: CallOptions, defaultTimeoutMs = DEFAULT_CALL_TIMEOUT_MS): Promise<CallReply<K>> => {
    const reply = (options.callTool === undefined ? await send<CallReply<K>>(LOCAL_ROUTES.call, call, callOptions, defaultTimeoutMs) : await options.callTool(call, callOptions)) as CallReply<K>;
    assertCallReply(reply, call.tool);
    return reply;
  };

  return {
    exec(host, command, execOptions = {}) {
      const request = {
        command,
        ...(execOptions.cwd === undefined ? {} : { cwd: execOptions.cwd }),
        ...(execOptions.timeoutMs === undefined ? {} : { timeout_ms: execOptions.timeoutMs }),
      };
      // The reply cannot come before the command ends, so the deadline covers its timeout.
      const floor = (execOptions.timeoutMs ?? DAEMON_EXEC_TIMEOUT_MS) + EXEC_GRACE_MS;
      const deadline = execOptions.deadlineMs ?? Math.max(options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS, floor);
      return callTool({ host, tool: 'execute_command', request }, { ...execOptions, deadlineMs: deadline });
    },
    async readFile(host, path, readOptions = {}) {
      const request = {
        path,
        ...(readOptions.offset === undefined ? {} : { offset: readOptions.offset }),
        ...(readOptions.length === undefined ? {} : { length: readOptions.length }),
      };
      const reply = await callTool({ host, tool: 'read_file', request }, readOptions);
      const { content_base64: encoded, ...metadata } = reply.result;
      return { hostname: reply.hostname, tool: reply.tool, decision: reply.decision, result: metadata, content: decodeBase64(encoded, metadata.bytes) };
    },
    writeFile(host, path, content, writeOptions = {}) {
      const bytes = typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content.buffer, content.byteOffset, content.byteLength);
      const request = {
        path,
        content_base64: bytes.toString('base64'),
        ...(writeOptions.mode === undefined ? {} : { mode: writeOptions.mode }),
      };
      return callTool({ host, tool: 'write_file', request }, writeOptions);
    },
    listDir(host, path, listOptions = {}) {
      return callTool({ host, tool: 'list_dir', request: { path } }, listOptions);
    },
    status(callOptions = {}) {
      return send<StatusReply>(LOCAL_ROUTES.status, undefined, callOptions, DEFAULT_REQUEST_TIMEOUT_MS);
    },
    peers(callOptions = {}) {
      return send<PeersReply>(LOCAL_ROUTES.peers, undefined, callOptions, DEFAULT_REQUEST_TIMEOUT_MS);
    },
    sessionRules(callOptions = {}) {
      return send<SessionRulesReply>(LOCAL_ROUTES.sessionRules, undefined, callOptions, DEFAULT_REQUEST_TIMEOUT_MS);
    },
  };
}

/**
 * The exit status a shell would report for a command that ran: its exit code, or 128 plus the
 * number of the signal that ended it (SIGKILL → 137), as `ssh` mirrors it.
 */
export function shellExitCode(output: Pick<ExecuteCommandOutput, 'exit_code' | 'signal'>): number {
  if (output.exit_code !== null) return output.exit_code;
  if (output.signal !== null) {
    const number = (osConstants.signals as Readonly<Record<string, number | undefined>>)[output.signal];
    return number === undefined ? 255 : 128 + number;
  }
  return 255;
}

interface Endpoint {
  readonly socketPath: string;
  readonly token: string;
}

async function resolveEndpoint(options: LocalRequestOptions): Promise<Endpoint> {
  const home = options.home ?? resolveCmdopHome();
  const run = runDir(home);
  const socketPath = options.socketPath ?? join(run, LOCAL_SOCKET_FILE);
  if (options.token !== undefined) return { socketPath, token: options.token };
  // The token is presented to whatever listens on the socket: only send it where no one else
  // could have put that socket.
  await assertPrivateRunDir(run, socketPath);
  const tokenPath = join(run, LOCAL_TOKEN_FILE);
  const token = (await readSecureFile(tokenPath, { maxBytes: 4096 }))?.trim();
  if (token === undefined || token === '') {
    if (!(await exists(socketPath))) throw notRunning(socketPath);
    throw new CmdopError('unavailable', `the cmdop daemon has a socket at ${socketPath} but no local token at ${tokenPath}`, {
      hint: 'It may be starting or have crashed; run `cmdop agent restart`.',
      details: { socket: socketPath, token_file: tokenPath },
    });
  }
  return { socketPath, token };
}

async function assertPrivateRunDir(run: string, socketPath: string): Promise<void> {
  let info: Stats;
  try {
    info = await lstat(run);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') throw notRunning(socketPath);
    throw new CmdopError('config', `cannot use ${run}: ${systemErrorCode(error) ?? String(error)}`, { cause: error, details: { path: run } });
  }
  const uid = process.getuid?.();
  if (!info.isDirectory() || (uid !== undefined && info.uid !== uid) || (info.mode & 0o077) !== 0) {
    throw new CmdopError('config', `${run} must be a directory of yours with mode 0700; cmdop does not send its local token through a socket others could have placed`, {
      hint: `Run: chmod 700 ${run}   (and check who owns it), then \`cmdop agent restart\`.`,
      details: { path: run, mode: (info.mode & 0o7777).toString(8).padStart(4, '0'), uid: info.uid },
    });
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

function notRunning(socketPath: string, cause?: unknown): CmdopError {
  // ECONNREFUSED: a socket file is left over from a daemon that is gone.
  return new CmdopError('unavailable', `the cmdop daemon is not running (no socket at ${socketPath})`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'Start it with `cmdop agent start`.',
    details: { socket: socketPath, ...(systemErrorCode(cause) === undefined ? {} : { errno: systemErrorCode(cause) }) },
  });
}

interface Exchange extends Endpoint {
  readonly route: LocalRoute;
  readonly payload: Buffer | undefined;
  readonly timeoutMs: number;
  readonly signal: AbortSignal | undefined;
}

interface RawReply {
  readonly status: number;
  readonly body: Buffer;
}

/** One HTTP exchange over the socket; settles exactly once, and always frees the socket. */
function exchange(ex: Exchange): Promise<RawReply> {
  return new Promise<RawReply>((resolve, reject) => {
    let settled = false;
    let response: IncomingMessage | undefined;
    const headers: Record<string, string | number> = {
      authorization: `Bearer ${ex.token}`,
      accept: 'application/json',
      host: 'localhost',
    };
    if (ex.payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = ex.payload.length;
    }
    // agent: false gives each call its own connection, so no pooled socket keeps the process alive.
    const req: ClientRequest = request({ socketPath: ex.socketPath, method: ex.route.method, path: ex.route.path, headers, agent: false });

    const cleanup = (): void => {
      clearTimeout(timer);
      ex.signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: CmdopError): void => {
      if (settled) return;
      settled = true;
      cleanup();
      reject(error);
      req.destroy();
      response?.destroy();
    };
    const succeed = (reply: RawReply): void => {
      if (settled) return;
      settled = true;
      cleanup();
      resolve(reply);
    };
    const onAbort = (): void => {
      fail(new CmdopError('tool_failed', `the call to ${ex.route.path} was cancelled`, { cause: ex.signal?.reason, details: { cancelled: true } }));
    };
    const timer = setTimeout(() => {
      fail(
        new CmdopError('unavailable', `the cmdop daemon did not answer ${ex.route.method} ${ex.route.path} within ${formatMs(ex.timeoutMs)}; the call was abandoned`, {
          hint: 'A host that asks its operator holds the call until they answer; give a longer timeout, or check the daemon with `cmdop agent status`.',
          details: { timeout_ms: ex.timeoutMs, route: ex.route.path },
        }),
      );
    }, ex.timeoutMs);
    ex.signal?.addEventListener('abort', onAbort, { once: true });

    req.on('error', (error) => {
      fail(connectionError(error, ex.socketPath, response !== undefined));
    });
    req.on('response', (res) => {
      response = res;
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_REPLY_BYTES) {
          fail(new CmdopError('internal', `the daemon's reply to ${ex.route.path} is larger than ${MAX_REPLY_BYTES} bytes; refused`));
          return;
        }
        chunks.push(chunk);
      });
      res.on('error', (error) => {
        fail(cutOff(ex.socketPath, error));
      });
      res.on('close', () => {
        // A daemon that dies mid-reply closes the socket before the body is complete.
        if (!res.complete) fail(cutOff(ex.socketPath));
      });
      res.on('end', () => {
        if (!res.complete) {
          fail(cutOff(ex.socketPath));
          return;
        }
        succeed({ status: res.statusCode ?? 0, body: Buffer.concat(chunks) });
      });
    });
    req.end(ex.payload);
  });
}

function connectionError(error: unknown, socketPath: string, replyStarted: boolean): CmdopError {
  if (replyStarted) return cutOff(socketPath, error);
  const code = systemErrorCode(error);
  if (code === 'ENOENT' || code === 'ECONNREFUSED') {
    return notRunning(socketPath, error);
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new CmdopError('unavailable', `cannot connect to the cmdop daemon at ${socketPath}: permission denied`, {
      cause: error,
      hint: 'The socket belongs to another user; run cmdop as the user who started the daemon, or set CMDOP_HOME to your own.',
      details: { socket: socketPath, errno: code },
    });
  }
  if (code === 'ECONNRESET' || code === 'EPIPE') {
    return new CmdopError('unavailable', `the cmdop daemon at ${socketPath} closed the connection without replying`, {
      cause: error,
      hint: 'It may have stopped or crashed; check it with `cmdop agent status`.',
      details: { socket: socketPath, errno: code },
    });
  }
  return new CmdopError('unavailable', `cannot talk to the cmdop daemon at ${socketPath}: ${code ?? (error instanceof Error ? error.message : String(error))}`, {
    cause: error,
    hint: 'Check it with `cmdop agent status`, or restart it with `cmdop agent restart`.',
    details: { socket: socketPath, ...(code === undefined ? {} : { errno: code }) },
  });
}

function cutOff(socketPath: string, cause?: unknown): CmdopError {
  return new CmdopError('unavailable', `the cmdop daemon at ${socketPath} stopped in the middle of its reply`, {
    ...(cause === undefined ? {} : { cause }),
    hint: 'It may have crashed or been stopped; check it with `cmdop agent status`. The call may or may not have run.',
    details: { socket: socketPath },
  });
}

function decodeReply(reply: RawReply): Record<string, unknown> {
  const text = reply.body.toString('utf8');
  let parsed: unknown;
  let parsedOk = false;
  if (text.trim() !== '') {
    try {
      parsed = JSON.parse(text) as unknown;
      parsedOk = true;
    } catch {
      parsedOk = false;
    }
  }
  if (reply.status >= 200 && reply.status < 300) {
    if (!parsedOk || !isRecord(parsed)) {
      throw new CmdopError('internal', `the cmdop daemon answered HTTP ${reply.status} with a body that is not a JSON object`, {
        hint: 'The CLI and the daemon may be different versions; run `cmdop agent restart`.',
      });
    }
    return parsed;
  }
  throw errorFromReply(reply.status, parsedOk ? parsed : undefined);
}

/** Rebuilds the daemon's CmdopError from an ErrorReply, keeping code, message, hint and details. */
function errorFromReply(status: number, body: unknown): CmdopError {
  const error = isRecord(body) && isRecord(body.error) ? body.error : undefined;
  if (error !== undefined && typeof error.message === 'string') {
    const options: CmdopErrorOptions = {
      ...(typeof error.hint === 'string' ? { hint: error.hint } : {}),
      ...(isRecord(error.details) ? { details: error.details } : {}),
    };
    return new CmdopError(isErrorCode(error.code) ? error.code : codeForStatus(status), error.message, options);
  }
  if (status === 401) {
    return new CmdopError('denied', 'the cmdop daemon refused the local token', {
      hint: 'The token in run/local.token does not match the running daemon (was it restarted, or is CMDOP_HOME another host\'s?); run `cmdop agent restart`.',
    });
  }
  return new CmdopError(codeForStatus(status), `the cmdop daemon answered HTTP ${status} without an error description`, {
    hint: 'The CLI and the daemon may be different versions; run `cmdop agent restart`.',
    details: { http_status: status },
  });
}

function codeForStatus(status: number): ErrorCode {
  for (const [code, httpStatus] of Object.entries(HTTP_STATUS_OF)) {
    if (httpStatus === status && isErrorCode(code)) return code;
  }
  if (status === 401) return 'denied';
  if (status >= 400 && status < 500) return 'invalid_input';
  return 'internal';
}

function assertCallReply(reply: CallReply, tool: LocalTool): void {
  if (typeof reply.hostname !== 'string' || !isRecord(reply.result) || !isRecord(reply.decision)) {
    throw new CmdopError('internal', `the cmdop daemon's reply to a ${tool} call lacks hostname, decision or result`, {
      hint: 'The CLI and the daemon may be different versions; run `cmdop agent restart`.',
    });
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function decodeBase64(encoded: unknown, expectedBytes: number): Buffer {
  if (typeof encoded !== 'string' || encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    throw new CmdopError('internal', "the daemon's read_file reply carries content_base64 that is not base64");
  }
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length !== expectedBytes) {
    throw new CmdopError('internal', `the daemon's read_file reply says ${expectedBytes} bytes but carries ${bytes.length}`);
  }
  return bytes;
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) {
    throw new CmdopError('tool_failed', 'the call was cancelled before it was sent', { cause: signal.reason, details: { cancelled: true } });
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
