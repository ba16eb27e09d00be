/**
 * The operator channel (DESIGN.md §4.1 step 4): a WebSocket upgrade of the daemon's local
 * socket at {@link OPERATOR_PATH}, carrying OperatorEvent out and OperatorMessage in (local-api.ts). The local token is checked before the upgrade, so a client
 * without it never gets a WebSocket; each connection is attached to the prompt broker as one
 * operator, gets its events, and may answer prompts. A connection that stops answering pings,
 * or stops reading, is cut, so a dead operator UI cannot keep prompts waiting for it.
 * {@link openOperatorSocket} is the client end, for the CLI (only src/transport imports `ws`).
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { z } from 'zod';
import { CmdopError, isErrorCode } from '../errors.js';
import { checkLocalToken } from '../identity/local-token.js';
import { OPERATOR_PATH, type AnswerRequest, type AnswerScope, type OperatorEvent, type OperatorMessage, type PendingPrompt } from './local-api.js';

/** Largest message an operator may send; an answer is a few dozen bytes. */
export const OPERATOR_MAX_PAYLOAD = 64 * 1024;

/** What the channel needs of the prompt broker (the daemon passes its broker). */
export interface OperatorBroker {
  /** Attaches one operator; the listener gets a snapshot at once, then every event. Returns the detach function. */
  attach(listener: (event: OperatorEvent) => void): () => void;
  /** Settles a prompt; throws (or rejects with) CmdopError('not_found' | 'invalid_input' | 'denied') when it cannot. */
  answer(request: AnswerRequest): OperatorAnswer | Promise<OperatorAnswer>;
}

/** What a settled answer reports back. */
export interface OperatorAnswer {
  readonly prompt: PendingPrompt;
  readonly scope: AnswerScope;
  readonly rule?: string | undefined;
}

/** Options for {@link attachOperatorChannel}. */
export interface OperatorChannelOptions {
  /** The local token; the handshake must carry `Authorization: Bearer TOKEN`. */
  readonly token: string;
  readonly broker: OperatorBroker;
  /** Ping every this many ms; a connection that has not answered the previous ping is cut (default 15 s). */
  readonly heartbeatMs?: number;
  /** Cut a connection whose unsent events exceed this many bytes: it stopped reading (default 1 MiB). */
  readonly maxBufferedBytes?: number;
  /** Told of each operator that connects or goes away (for the daemon's log). */
  readonly onOperator?: (change: 'connected' | 'disconnected', operators: number) => void;
}

/** The channel attached to a server. */
export interface OperatorChannel {
  /** How many operators are connected through this channel. */
  connections(): number;
  /** Stops taking upgrades, closes every operator connection (detaching it) and resolves when they are gone. */
  close(): Promise<void>;
}

const DEFAULT_HEARTBEAT_MS = 15_000;
const DEFAULT_MAX_BUFFERED_BYTES = 1024 * 1024;
const CLOSE_GRACE_MS = 1_000;

const operatorMessageSchema = z
  .object({
    type: z.literal('answer'),
    id: z.string().min(1).max(200),
    decision: z.enum(['allow', 'deny']),
    scope: z.enum(['once', 'session', 'global']).optional(),
  })
  .strict();

/**
 * Serves the operator channel on `server` (an HTTP server on the local socket): takes over its
 * 'upgrade' requests, answering 404 for any path but {@link OPERATOR_PATH} and 401 for a
 * missing or wrong token.
 */
export function attachOperatorChannel(server: Server, options: OperatorChannelOptions): OperatorChannel {
  const { token, broker } = options;
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_MAX_BUFFERED_BYTES;
  const wss = new WebSocketServer({ noServer: true, maxPayload: OPERATOR_MAX_PAYLOAD, clientTracking: true, perMessageDeflate: false });
  const alive = new WeakMap<WebSocket, boolean>();
  let closing = false;

  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    socket.on('error', () => undefined);
    if (closing) {
      refuse(socket, 503, 'unavailable', 'the daemon is shutting down');
      return;
    }
    if (pathOf(request.url) !== OPERATOR_PATH) {
      refuse(socket, 404, 'not_found', `no WebSocket endpoint at ${pathOf(request.url)}; the operator channel is ${OPERATOR_PATH}`);
      return;
    }
    if (!checkLocalToken(token, bearerToken(request.headers.authorization))) {
      refuse(socket, 401, 'denied', 'the local token is missing or wrong');
      return;
    }
    wss.handleUpgrade(request, socket, head, (ws) => {
      serve(ws);
    });
  };

  function serve(ws: WebSocket): void {
    alive.set(ws, true);
    const send = (event: OperatorEvent): void => {
      if (ws.readyState !== ws.OPEN) return;
      // An operator UI that stops reading would otherwise grow our memory without bound.
      if (ws.bufferedAmount > maxBufferedBytes) {
        ws.terminate();
        return;
      }
      ws.send(JSON.stringify(event));
    };
    ws.on('pong', () => alive.set(ws, true));
    ws.on('error', () => undefined);
    ws.on('message', (data: RawData, isBinary: boolean) => {
      void handleMessage(data, isBinary).then(send);
    });
    const detach = broker.attach(send);
    options.onOperator?.('connected', wss.clients.size);
    ws.once('close', () => {
      detach();
      options.onOperator?.('disconnected', wss.clients.size);
    });
  }

  async function handleMessage(data: RawData, isBinary: boolean): Promise<OperatorEvent> {
    if (isBinary) return { type: 'error', message: 'binary messages are not accepted; send JSON text' };
    let json: unknown;
    try {
      json = JSON.parse(rawText(data));
    } catch {
      return { type: 'error', message: 'the message is not JSON; send {"type":"answer","id":ID,"decision":"allow"|"deny","scope"?:"once"|"session"|"global"}' };
    }
    const parsed = operatorMessageSchema.safeParse(json);
    if (!parsed.success) {
      const id = idOf(json);
      const issue = parsed.error.issues[0];
      const where = issue === undefined || issue.path.length === 0 ? '' : `${issue.path.join('.')}: `;
      return { type: 'error', ...(id === undefined ? {} : { id }), message: `not an operator message: ${where}${issue?.message ?? 'invalid'}` };
    }
    const message = parsed.data;
    try {
      const answered = await broker.answer({ id: message.id, decision: message.decision, ...(message.scope === undefined ? {} : { scope: message.scope }) });
      return { type: 'answered', id: message.id, ...(answered.rule === undefined ? {} : { rule: answered.rule }) };
    } catch (error) {
      // A CmdopError's message is written for the operator; anything else stays inside the daemon.
      if (error instanceof CmdopError && error.code !== 'internal') return { type: 'error', id: message.id, message: error.message, code: error.code };
      return { type: 'error', id: message.id, message: 'the daemon could not take the answer' };
    }
  }

  const heartbeat = setInterval(() => {
    for (const ws of wss.clients) {
      if (alive.get(ws) !== true) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, heartbeatMs);
  heartbeat.unref();

  server.on('upgrade', onUpgrade);

  return {
    connections: () => wss.clients.size,
    async close() {
      if (closing) return;
      closing = true;
      clearInterval(heartbeat);
      server.off('upgrade', onUpgrade);
      const open = [...wss.clients];
      await Promise.all(
        open.map(
          (ws) =>
            new Promise<void>((resolve) => {
              if (ws.readyState === ws.CLOSED) {
                resolve();
                return;
              }
              const cut = setTimeout(() => {
                ws.terminate();
              }, CLOSE_GRACE_MS);
              ws.once('close', () => {
                clearTimeout(cut);
                resolve();
              });
              ws.close(1001, 'the daemon is shutting down');
            }),
        ),
      );
      await new Promise<void>((resolve) => {
        wss.close(() => {
          resolve();
        });
      });
    },
  };
}

/** The token of an `Authorization: Bearer TOKEN` header, or undefined. */
function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const match = /^Bearer +(\S+) *$/i.exec(header);
  return match?.[1];
}

function pathOf(url: string | undefined): string {
  const raw = url ?? '/';
  const query = raw.indexOf('?');
  return query === -1 ? raw : raw.slice(0, query);
}

function refuse(socket: Duplex, status: 401 | 404 | 503, code: string, message: string): void {
  const reason = status === 401 ? 'Unauthorized' : status === 404 ? 'Not Found' : 'Service Unavailable';
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  // end() flushes the reply; destroy after it, so a client that never reads cannot hold the socket.
  socket.once('finish', () => socket.destroy());
}

function rawText(data: RawData): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return data.toString('utf8');
}

function idOf(json: unknown): string | undefined {
  if (typeof json !== 'object' || json === null || !('id' in json)) return undefined;
  const { id } = json;
  return typeof id === 'string' && id.length > 0 && id.length <= 200 ? id : undefined;
}

/** Largest message the client end accepts: a snapshot of many long prompts. */
const CLIENT_MAX_PAYLOAD = 16 * 1024 * 1024;
const HANDSHAKE_TIMEOUT_MS = 5_000;

/** The client end of the operator channel, as small as the CLI needs it. */
export interface OperatorSocket {
  /** Every event the daemon sends; events that arrived before a listener was set are delivered to it first. */
  onEvent(listener: (event: OperatorEvent) => void): void;
  /** Called once when the connection is gone, whoever closed it. */
  onClose(listener: () => void): void;
  send(message: OperatorMessage): void;
  close(): void;
}

/** Options for {@link openOperatorSocket}. */
export interface OperatorSocketOptions {
  /** The daemon's local socket (`CMDOP_HOME/run/agent.sock`). */
  readonly socketPath: string;
  readonly token: string;
}

const promptSchema = z.object({
  id: z.string(),
  caller_host: z.string(),
  caller_principal: z.string(),
  tool: z.string(),
  operation: z.string().nullable(),
  target: z.string(),
  asked_by: z.string(),
  reason: z.string(),
  created_at: z.string(),
  expires_at: z.string(),
});
const outcomeSchema = z.enum(['ask_allowed', 'ask_denied', 'ask_timeout']);
const operatorEventSchema = z.discriminatedUnion('type', [
  z.object({ type: z.literal('snapshot'), prompts: z.array(promptSchema) }),
  z.object({ type: z.literal('prompt'), prompt: promptSchema }),
  z.object({ type: z.literal('resolved'), id: z.string(), outcome: outcomeSchema }),
  z.object({ type: z.literal('answered'), id: z.string(), rule: z.string().optional() }),
  z.object({ type: z.literal('error'), id: z.string().optional(), message: z.string(), code: z.string().refine(isErrorCode).optional() }),
]);

/**
 * Connects to the operator channel over the daemon's unix socket. Rejects with the system error
 * (ENOENT, ECONNREFUSED) when nothing listens there, with CmdopError('config') when the daemon
 * refuses the token, and CmdopError('unavailable') for any other refusal.
 */
export function openOperatorSocket(options: OperatorSocketOptions): Promise<OperatorSocket> {
  const ws = new WebSocket(`ws+unix://${options.socketPath}:${OPERATOR_PATH}`, {
    headers: { authorization: `Bearer ${options.token}` },
    maxPayload: CLIENT_MAX_PAYLOAD,
    perMessageDeflate: false,
    handshakeTimeout: HANDSHAKE_TIMEOUT_MS,
  });
  const buffered: OperatorEvent[] = [];
  let eventListener: ((event: OperatorEvent) => void) | undefined;
  let closeListener: (() => void) | undefined;
  let isClosed = false;

  ws.on('message', (data: RawData, isBinary: boolean) => {
    if (isBinary) return;
    let parsed: OperatorEvent;
    try {
      parsed = operatorEventSchema.parse(JSON.parse(rawText(data))) as OperatorEvent;
    } catch {
      // A daemon newer than this CLI may send events it does not know; they are skipped.
      return;
    }
    if (eventListener === undefined) buffered.push(parsed);
    else eventListener(parsed);
  });
  ws.on('close', () => {
    isClosed = true;
    closeListener?.();
  });

  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (request, response) => {
      const status = response.statusCode ?? 0;
      request.destroy();
      ws.terminate();
      reject(
        status === 401
          ? new CmdopError('config', `the daemon on ${options.socketPath} refused the local token`, { hint: 'The token changed under a running daemon; restart it with `cmdop agent restart`.' })
          : new CmdopError('unavailable', `the daemon on ${options.socketPath} refused the operator channel (HTTP ${status})`, {
              hint: status === 404 ? 'The daemon is older than this CLI; restart it with `cmdop agent restart`.' : 'Check it with `cmdop agent status`.',
            }),
      );
    });
    ws.once('error', (error) => {
      reject(error);
    });
    ws.once('open', () => {
      // Later errors end in 'close'; without a listener ws would throw them.
      ws.on('error', () => undefined);
      resolve({
        onEvent(listener) {
          eventListener = listener;
          for (const event of buffered.splice(0)) listener(event);
        },
        onClose(listener) {
          closeListener = listener;
          if (isClosed) listener();
        },
        send(message) {
          if (ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
        },
        close() {
          ws.close(1000, 'operator quit');
        },
      });
    });
  });
}
