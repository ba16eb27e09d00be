/**
 * The CLI's side of the operator channel (DESIGN.md §4.1 step 4): finds the daemon's local
 * socket and token under `CMDOP_HOME/run/`, connects as an operator over the WebSocket at
 * OPERATOR_PATH, and lists or answers prompts over plain HTTP on the same socket (local-client.ts).
 * A daemon that is not running is CmdopError('unavailable'), exit code 7.
 */
import { join } from 'node:path';
import { runDir, resolveCmdopHome } from '../config/cmdop-home.js';
import { readSecureFile } from '../config/secure-file.js';
import { CmdopError, systemErrorCode, type ErrorCode } from '../errors.js';
import { localRequest } from './local-client.js';
import { openOperatorSocket, type OperatorSocket } from '../transport/operator-channel.js';
import {
  LOCAL_ROUTES,
  LOCAL_SOCKET_FILE,
  LOCAL_TOKEN_FILE,
  type AnswerReply,
  type AnswerRequest,
  type OperatorEvent,
  type PendingReply,
} from '../transport/local-api.js';

/** Where the daemon listens and the token it wants. */
export interface LocalEndpoint {
  readonly socketPath: string;
  readonly token: string;
}

/** A connection to the daemon as one operator. */
export interface OperatorConnection {
  /** Every event from the daemon, in order; ends when the connection closes. Iterate it once. */
  readonly events: AsyncIterable<OperatorEvent>;
  /**
   * Sends an answer and resolves with the daemon's `answered` event for it; rejects with
   * CmdopError('not_found' | 'invalid_input') when the daemon replies `error` for that id.
   */
  answer(request: AnswerRequest): Promise<{ readonly id: string; readonly rule?: string }>;
  /** Resolves when the connection has closed, whoever closed it; `byDaemon` is false after {@link close}. */
  readonly closed: Promise<{ readonly byDaemon: boolean }>;
  close(): void;
}

/** How long an answer may wait for the daemon's reply. */
const ANSWER_REPLY_MS = 10_000;

/** The not-running error, the same wherever the CLI meets it. */
export function daemonNotRunning(cause?: unknown): CmdopError {
  return new CmdopError('unavailable', 'the cmdop daemon is not running', {
    hint: 'Start it with `cmdop agent start`.',
    ...(cause === undefined ? {} : { cause }),
  });
}

/**
 * Finds the local socket and reads the local token of the daemon under `home` (default:
 * `CMDOP_HOME`). A missing token file means no daemon: CmdopError('unavailable').
 */
export async function resolveLocalEndpoint(home: string = resolveCmdopHome()): Promise<LocalEndpoint> {
  const dir = runDir(home);
  const token = (await readSecureFile(join(dir, LOCAL_TOKEN_FILE)))?.trim();
  if (token === undefined || token === '') throw daemonNotRunning();
  return { socketPath: join(dir, LOCAL_SOCKET_FILE), token };
}

/** Connects to the daemon's operator channel; the first event is a snapshot of what is waiting. */
export async function connectOperator(endpoint: LocalEndpoint): Promise<OperatorConnection> {
  let socket: OperatorSocket;
  try {
    socket = await openOperatorSocket(endpoint);
  } catch (error) {
    throw connectError(endpoint, error);
  }
  return wrap(socket);
}

function wrap(socket: OperatorSocket): OperatorConnection {
  const queue: OperatorEvent[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let closedByUs = false;
  const replies = new Map<string, { resolve: (value: { id: string; rule?: string }) => void; reject: (error: CmdopError) => void }>();

  const closed = new Promise<{ byDaemon: boolean }>((resolve) => {
    socket.onClose(() => {
      ended = true;
      for (const [id, waiter] of replies) {
        waiter.reject(new CmdopError('unavailable', `the daemon closed the operator channel before answering about prompt ${id}`, { hint: 'Check it with `cmdop agent status`.' }));
      }
      replies.clear();
      wake?.();
      resolve({ byDaemon: !closedByUs });
    });
  });

  // The ids the daemon has shown and not yet resolved: an error about any other id is a not-found.
  const shown = new Set<string>();

  socket.onEvent((event) => {
    if (event.type === 'snapshot') {
      shown.clear();
      for (const prompt of event.prompts) shown.add(prompt.id);
    } else if (event.type === 'prompt') {
      shown.add(event.prompt.id);
    } else if (event.type === 'resolved') {
      shown.delete(event.id);
    }
    if (event.type === 'answered' || (event.type === 'error' && event.id !== undefined)) {
      const waiter = replies.get(event.id ?? '');
      if (waiter !== undefined) {
        replies.delete(event.id ?? '');
        if (event.type === 'answered') waiter.resolve({ id: event.id, ...(event.rule === undefined ? {} : { rule: event.rule }) });
        else waiter.reject(answerError(event, shown.has(event.id ?? '')));
      }
    }
    queue.push(event);
    wake?.();
  });

  async function* events(): AsyncGenerator<OperatorEvent> {
    for (;;) {
      const next = queue.shift();
      if (next !== undefined) {
        yield next;
        continue;
      }
      if (ended) return;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  }

  return {
    events: events(),
    closed,
    answer(request) {
      if (ended) return Promise.reject(new CmdopError('unavailable', 'the operator channel is closed', { hint: 'Reconnect with `cmdop permissions prompts`.' }));
      if (replies.has(request.id)) return Promise.reject(new CmdopError('invalid_input', `an answer for prompt ${request.id} is already on its way`));
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          replies.delete(request.id);
          reject(new CmdopError('unavailable', `the daemon did not confirm the answer for prompt ${request.id} in ${ANSWER_REPLY_MS / 1000} s`, { hint: 'Check it with `cmdop permissions pending`.' }));
        }, ANSWER_REPLY_MS);
        replies.set(request.id, {
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          reject: (error) => {
            clearTimeout(timer);
            reject(error);
          },
        });
        socket.send({ type: 'answer', ...request });
      });
    },
    close() {
      closedByUs = true;
      socket.close();
    },
  };
}

/** GET /v1/prompts: the prompts waiting now. */
export async function fetchPending(endpoint: LocalEndpoint): Promise<PendingReply> {
  return localRequest<PendingReply>(endpoint, LOCAL_ROUTES.pending);
}

/** POST /v1/prompts/answer: answers one prompt; an unknown or expired id is CmdopError('not_found'). */
export async function postAnswer(endpoint: LocalEndpoint, answer: AnswerRequest): Promise<AnswerReply> {
  return localRequest<AnswerReply>(endpoint, LOCAL_ROUTES.answer, answer);
}

function answerError(event: { readonly id?: string; readonly message: string; readonly code?: ErrorCode }, stillShown: boolean): CmdopError {
  const id = event.id ?? '';
  // A daemon of before the error event carried its code: a prompt no longer waiting is a not-found.
  const code: ErrorCode = event.code ?? (stillShown ? 'invalid_input' : 'not_found');
  return new CmdopError(code, event.message, { hint: 'List the waiting prompts with `cmdop permissions pending`.', details: { id } });
}

function connectError(endpoint: LocalEndpoint, error: unknown): CmdopError {
  if (error instanceof CmdopError) return error;
  const code = systemErrorCode(error);
  // ENOENT: no socket file; ECONNREFUSED: a socket file left behind by a daemon that died.
  if (code === 'ENOENT' || code === 'ECONNREFUSED') return daemonNotRunning(error);
  if (code === 'EACCES' || code === 'EPERM') {
    return new CmdopError('config', `cannot connect to ${endpoint.socketPath}: ${code}`, { cause: error, hint: 'The socket belongs to another user; run cmdop as the user who started the daemon.' });
  }
  return CmdopError.from(error, 'unavailable');
}
