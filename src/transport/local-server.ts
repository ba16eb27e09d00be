/**
 * The daemon's side of the local channel (see local-api.ts): HTTP over a unix socket made
 * 0600, every request checked for the local token before anything else, bodies bounded and
 * validated, errors answered as ErrorReply with the status of their code. Nothing here is
 * reachable from the network.
 */
import { chmod, unlink } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { z } from 'zod';
import { CmdopError, systemErrorCode } from '../errors.js';
import { checkLocalToken } from '../identity/local-token.js';
import { HTTP_STATUS_OF, LOCAL_ROUTES, type AnswerReply, type AnswerRequest, type CallReply, type CallRequest, type ErrorReply, type OauthTokenReply, type PeersReply, type PendingReply, type SessionRulesReply, type StatusReply } from './local-api.js';

/** What the daemon answers on the local channel. */
export interface LocalHandler {
  status(): Promise<StatusReply>;
  shutdown(): Promise<void>;
  call(request: CallRequest, signal: AbortSignal): Promise<CallReply>;
  peers(): Promise<PeersReply>;
  sessionRules(): SessionRulesReply;
  pending(): PendingReply;
  answer(request: AnswerRequest): Promise<AnswerReply>;
  /** A fresh access token of this machine's OAuth session. */
  oauthToken(): Promise<OauthTokenReply>;
}

export interface LocalServerOptions {
  readonly socketPath: string;
  readonly token: string;
  readonly handler: LocalHandler;
  /** Largest request body, in bytes (default 16 MiB: an 8 MiB file, base64-encoded). */
  readonly maxBodyBytes?: number;
  /** Told of handler errors that were not CmdopErrors. */
  readonly onInternalError?: (error: unknown) => void;
}

export interface LocalServer {
  readonly server: Server;
  /** Stops accepting, waits up to `graceMs` for open requests, removes the socket. */
  close(graceMs?: number): Promise<void>;
}

const DEFAULT_MAX_BODY = 16 * 1024 * 1024;

const callSchema = z.discriminatedUnion('tool', [
  z.object({ host: z.string().min(1).max(253), tool: z.literal('execute_command'), request: z.object({ command: z.string().min(1), cwd: z.string().optional(), timeout_ms: z.number().int().min(1).max(600_000).optional() }).strict() }).strict(),
  z.object({ host: z.string().min(1).max(253), tool: z.literal('read_file'), request: z.object({ path: z.string().min(1), offset: z.number().int().min(0).optional(), length: z.number().int().min(0).optional() }).strict() }).strict(),
  z.object({ host: z.string().min(1).max(253), tool: z.literal('write_file'), request: z.object({ path: z.string().min(1), content_base64: z.string(), mode: z.number().int().min(0).max(0o7777).optional() }).strict() }).strict(),
  z.object({ host: z.string().min(1).max(253), tool: z.literal('list_dir'), request: z.object({ path: z.string().min(1) }).strict() }).strict(),
]);
const answerSchema = z.object({ id: z.string().min(1).max(200), decision: z.enum(['allow', 'deny']), scope: z.enum(['once', 'session', 'global']).optional() }).strict();

/** Listens on `socketPath` (replacing a stale socket file) and makes it 0600. */
export async function createLocalServer(options: LocalServerOptions): Promise<LocalServer> {
  const maxBody = options.maxBodyBytes ?? DEFAULT_MAX_BODY;
  const server = createServer((req, res) => {
    serve(req, res, options, maxBody).catch((error: unknown) => {
      options.onInternalError?.(error);
      if (!res.headersSent) send(res, 500, errorBody(new CmdopError('internal', 'the daemon failed to answer; its agent log has the details')));
    });
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 0;
  await unlink(options.socketPath).catch((error: unknown) => {
    if (systemErrorCode(error) !== 'ENOENT') throw error;
  });
  await new Promise<void>((resolveListen, reject) => {
    server.once('error', reject);
    // umask-independent: the socket is made private before its path is announced to anyone.
    const previous = process.umask(0o177);
    try {
      server.listen(options.socketPath, () => {
        server.off('error', reject);
        resolveListen();
      });
    } finally {
      process.umask(previous);
    }
  });
  await chmod(options.socketPath, 0o600);
  let closing: Promise<void> | undefined;
  return {
    server,
    close(graceMs = 5_000) {
      closing ??= new Promise<void>((resolveClose) => {
        const timer = setTimeout(() => {
          server.closeAllConnections();
        }, graceMs);
        server.close(() => {
          clearTimeout(timer);
          resolveClose();
        });
        server.closeIdleConnections();
      }).then(() => unlink(options.socketPath).catch(() => undefined));
      return closing;
    },
  };
}

async function serve(req: IncomingMessage, res: ServerResponse, options: LocalServerOptions, maxBody: number): Promise<void> {
  const presented = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
  if (!checkLocalToken(options.token, presented)) {
    send(res, 401, errorBody(new CmdopError('denied', 'the local token is missing or wrong', { hint: `Use the token in CMDOP_HOME/run/local.token; only the daemon's own user can read it.` })));
    return;
  }
  const route = `${req.method ?? ''} ${(req.url ?? '').split('?')[0] ?? ''}`;
  const controller = new AbortController();
  res.on('close', () => {
    if (!res.writableFinished) controller.abort(new CmdopError('unavailable', 'the local caller went away'));
  });
  const h = options.handler;
  try {
    switch (route) {
      case key(LOCAL_ROUTES.status):
        send(res, 200, await h.status());
        return;
      case key(LOCAL_ROUTES.shutdown):
        send(res, 202, { stopping: true });
        await h.shutdown();
        return;
      case key(LOCAL_ROUTES.peers):
        send(res, 200, await h.peers());
        return;
      case key(LOCAL_ROUTES.sessionRules):
        send(res, 200, h.sessionRules());
        return;
      case key(LOCAL_ROUTES.pending):
        send(res, 200, h.pending());
        return;
      case key(LOCAL_ROUTES.answer): {
        const body = parse(answerSchema, await readBody(req, maxBody), 'answer');
        send(res, 200, await h.answer(body as AnswerRequest));
        return;
      }
      case key(LOCAL_ROUTES.oauthToken):
        send(res, 200, await h.oauthToken());
        return;
      case key(LOCAL_ROUTES.call): {
        const body = parse(callSchema, await readBody(req, maxBody), 'call');
        send(res, 200, await h.call(body as CallRequest, controller.signal));
        return;
      }
      default:
        send(res, 404, errorBody(new CmdopError('invalid_input', `no such route: ${route}`, { hint: 'This client and the daemon may be of different versions; restart the daemon.' })));
    }
  } catch (error) {
    if (!(error instanceof CmdopError)) options.onInternalError?.(error);
    const mapped = error instanceof CmdopError ? error : new CmdopError('internal', 'the daemon failed unexpectedly; its agent log has the details');
    if (!res.headersSent) send(res, HTTP_STATUS_OF[mapped.code], errorBody(mapped));
  }
}

function key(route: { readonly method: string; readonly path: string }): string {
  return `${route.method} ${route.path}`;
}

function parse<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
  const parsed = schema.safeParse(json);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0];
  throw new CmdopError('invalid_input', `bad ${what} request: ${issue === undefined ? 'invalid' : `${issue.path.join('.') || '(body)'}: ${issue.message}`}`);
}

async function readBody(req: IncomingMessage, maxBody: number): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > maxBody) throw new CmdopError('invalid_input', `the request is larger than ${maxBody} bytes`, { hint: 'Send large files in parts.' });
    chunks.push(buffer);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new CmdopError('invalid_input', 'the request body is not valid JSON');
  }
}

function errorBody(error: CmdopError): ErrorReply {
  return {
    error: {
      code: error.code,
      message: error.message,
      ...(error.hint === undefined ? {} : { hint: error.hint }),
      ...(error.details === undefined ? {} : { details: error.details }),
    },
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}
