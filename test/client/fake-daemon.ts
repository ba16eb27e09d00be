/**
 * A FAKE local daemon for the client and `cmdop connect` tests. It exists only because the real
 * daemon (src/daemon) is being written at the same time; once it serves the local API, the
 * end-to-end tests should run against it instead. What is real here: a node:http server on a
 * real unix socket in a temporary CMDOP_HOME (run/ 0700, run/local.token 0600), checking the
 * bearer token and speaking the routes and shapes of src/transport/local-api.ts. What is canned:
 * the answers, from {@link cannedHost} or a test's own handler.
 */
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  HTTP_STATUS_OF,
  LOCAL_ROUTES,
  LOCAL_SOCKET_FILE,
  LOCAL_TOKEN_FILE,
  type CallReply,
  type CallRequest,
  type ErrorReply,
  type WireGateDecision,
} from '../../src/transport/local-api.js';
import type { ErrorCode } from '../../src/errors.js';

export const FAKE_TOKEN = 'fake-local-token-0123456789abcdefghijklmnopq';

/** One request as the fake daemon saw it. */
export interface SeenRequest {
  readonly method: string;
  readonly path: string;
  readonly authorization: string | undefined;
  readonly body: unknown;
}

/** What a handler answers: a JSON reply, or a misbehaviour. */
export type FakeAnswer =
  | { readonly status: number; readonly body: unknown }
  /** Sends headers and half the body, then destroys the socket, as a daemon crashing mid-reply would. */
  | { readonly kind: 'die_mid_reply'; readonly status: number; readonly body: unknown }
  /** Never answers. */
  | { readonly kind: 'hang' };

export type FakeHandler = (request: SeenRequest) => FakeAnswer | Promise<FakeAnswer>;

export interface FakeDaemon {
  readonly home: string;
  readonly socketPath: string;
  readonly seen: SeenRequest[];
  /** Replaces the handler (the token check stays). */
  handle(handler: FakeHandler): void;
  close(): Promise<void>;
}

/** Starts the fake daemon in a fresh CMDOP_HOME; `close()` stops it and removes the folder. */
export async function startFakeDaemon(handler: FakeHandler = cannedHost()): Promise<FakeDaemon> {
  const home = mkdtempSync(join(tmpdir(), 'cmdop-client-'));
  const run = join(home, 'run');
  mkdirSync(run, { mode: 0o700 });
  chmodSync(run, 0o700);
  const tokenFile = join(run, LOCAL_TOKEN_FILE);
  writeFileSync(tokenFile, `${FAKE_TOKEN}\n`, { mode: 0o600 });
  chmodSync(tokenFile, 0o600);
  const socketPath = join(run, LOCAL_SOCKET_FILE);
  const seen: SeenRequest[] = [];
  let current = handler;
  const sockets = new Set<Socket>();

  const server = createServer((req, res) => {
    void serve(req, res);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const request: SeenRequest = {
      method: req.method ?? '',
      path: req.url ?? '',
      authorization: req.headers.authorization,
      body: text === '' ? undefined : (JSON.parse(text) as unknown),
    };
    seen.push(request);
    if (request.authorization !== `Bearer ${FAKE_TOKEN}`) {
      send(res, 401, { error: { code: 'denied', message: 'missing or wrong local token' } });
      return;
    }
    const answer = await current(request);
    if ('kind' in answer) {
      if (answer.kind === 'hang') return;
      const body = Buffer.from(JSON.stringify(answer.body));
      res.writeHead(answer.status, { 'content-type': 'application/json', 'content-length': body.length });
      res.write(body.subarray(0, Math.floor(body.length / 2)), () => {
        res.socket?.destroy();
      });
      return;
    }
    send(res, answer.status, answer.body);
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => {
      resolve();
    });
  });
  chmodSync(socketPath, 0o600);

  return {
    home,
    socketPath,
    seen,
    handle(next) {
      current = next;
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => { resolve(); }));
      rmSync(home, { recursive: true, force: true });
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = Buffer.from(JSON.stringify(body));
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': text.length });
  res.end(text);
}

/** An ErrorReply with the status the contract gives its code. */
export function errorAnswer(code: ErrorCode, message: string, extra: { hint?: string; details?: Record<string, unknown> } = {}): FakeAnswer {
  const body: ErrorReply = { error: { code, message, ...extra } };
  return { status: HTTP_STATUS_OF[code], body };
}

export const ALLOW: WireGateDecision = { decision: 'allow', source: 'rule', reason: 'allowed by rule', rule: 'execute_command(echo *)', scope: 'global' };
export const DENY_RM: WireGateDecision = { decision: 'deny', source: 'floor', reason: 'recursive delete of a protected path' };

/** Binary content with every byte value, invalid as UTF-8. */
export const BINARY = Buffer.from(Array.from({ length: 512 }, (_, i) => (i * 7) % 256));

/**
 * Canned answers for one peer, `vps-audi`; any other host is unknown (404). execute_command:
 * `echo hi` prints, `exit N` exits N, `kill` ends by SIGKILL, `flood` truncates, `rm -rf /` is
 * denied, `slow` hangs, `crash` dies mid-reply. Files live in memory.
 */
export function cannedHost(): FakeHandler {
  const files = new Map<string, Buffer>([
    ['/etc/hostname', Buffer.from('vps-audi\n')],
    ['/srv/blob.bin', BINARY],
  ]);
  return (request) => {
    if (request.method === LOCAL_ROUTES.status.method && request.path === LOCAL_ROUTES.status.path) {
      return { status: 200, body: { pid: 1, version: '0.1.0', uptime_ms: 5, host_name: 'laptop', listen_address: '127.0.0.1:8470', workspace: { id: 'w1', name: 'home', is_ca: true }, mode: 'default', peers_online: 1, calls_served: 0, operators_connected: 0 } };
    }
    if (request.path === LOCAL_ROUTES.peers.path) {
      return { status: 200, body: { peers: [{ name: 'vps-audi', address: '10.0.0.2:8470', online: true, last_seen: null, source: 'roster' }] } };
    }
    if (request.path === LOCAL_ROUTES.sessionRules.path) return { status: 200, body: { allow: ['read_file(/srv/**)'], deny: [], ask: [] } };
    if (request.path !== LOCAL_ROUTES.call.path) return errorAnswer('not_found', `no route ${request.path}`);
    const call = request.body as CallRequest;
    if (call.host !== 'vps-audi') {
      return errorAnswer('not_found', `unknown host "${call.host}"`, { hint: 'List the hosts with `cmdop peers list`.', details: { host: call.host } });
    }
    const reply = <T extends CallRequest['tool']>(tool: T, result: CallReply<T>['result']): FakeAnswer => ({ status: 200, body: { hostname: 'vps-audi', tool, decision: ALLOW, result } });
    switch (call.tool) {
      case 'execute_command': {
        const command = call.request.command;
        const ran = { exit_code: 0, signal: null, stdout: '', stderr: '', stdout_truncated: false, stderr_truncated: false, timed_out: false, duration_ms: 12 };
        if (command === 'rm -rf /') {
          return errorAnswer('denied', 'execute_command(rm -rf /) denied by vps-audi: recursive delete of a protected path', { hint: 'The floor cannot be overridden.', details: { decision: DENY_RM, hostname: 'vps-audi' } });
        }
        if (command === 'slow') return { kind: 'hang' };
        if (command === 'crash') return { kind: 'die_mid_reply', status: 200, body: { hostname: 'vps-audi', tool: 'execute_command', decision: ALLOW, result: { ...ran, stdout: 'x'.repeat(4096) } } };
        if (command === 'kill') return reply('execute_command', { ...ran, exit_code: null, signal: 'SIGKILL' });
        if (command === 'flood') return reply('execute_command', { ...ran, stdout: 'y'.repeat(100), stdout_truncated: true });
        const exit = /^exit (\d+)$/.exec(command);
        if (exit) return reply('execute_command', { ...ran, exit_code: Number(exit[1]), stderr: 'bye\n' });
        if (command.startsWith('echo ')) return reply('execute_command', { ...ran, stdout: `${command.slice(5)}\n` });
        return reply('execute_command', { ...ran, exit_code: 127, stderr: `bash: ${command}: command not found\n` });
      }
      case 'read_file': {
        const content = files.get(call.request.path);
        if (content === undefined) return errorAnswer('not_found', `${call.request.path} does not exist on vps-audi`, { details: { path: call.request.path } });
        const offset = call.request.offset ?? 0;
        const slice = content.subarray(offset, call.request.length === undefined ? undefined : offset + call.request.length);
        const truncated = call.request.length === undefined ? false : offset + slice.length < content.length && slice.length < call.request.length;
        return reply('read_file', { path: call.request.path, size: content.length, offset, bytes: slice.length, content_base64: slice.toString('base64'), truncated, eof: offset + slice.length >= content.length });
      }
      case 'write_file': {
        const created = !files.has(call.request.path);
        const content = Buffer.from(call.request.content_base64, 'base64');
        files.set(call.request.path, content);
        return reply('write_file', { path: call.request.path, bytes: content.length, created });
      }
      case 'list_dir': {
        if (call.request.path !== '/srv') return errorAnswer('not_found', `${call.request.path} does not exist on vps-audi`);
        return reply('list_dir', { path: '/srv', entries: [{ name: 'app', type: 'dir' }, { name: 'blob.bin', type: 'file', size: BINARY.length }, { name: 'evil\u001b[2Jname', type: 'file', size: 1 }], truncated: false });
      }
    }
  };
}
