import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { connectOperator } from '../../src/client/operator-client.js';
import { createPromptBroker, type PromptBroker, type PromptInput } from '../../src/daemon/prompt-broker.js';
import { CmdopError } from '../../src/errors.js';
import { createLocalToken } from '../../src/identity/local-token.js';
import { OPERATOR_PATH, type OperatorEvent } from '../../src/transport/local-api.js';
import { attachOperatorChannel, type OperatorChannel } from '../../src/transport/operator-channel.js';

const input: PromptInput = {
  caller_host: 'vps-bmw',
  caller_principal: 'host:vps-bmw',
  tool: 'write_file',
  operation: null,
  target: '/srv/app/config.json',
  asked_by: 'ask: write_file',
  reason: 'write_file is in ask',
};

/** A ws client that records every event and can wait for the next one matching a test. */
class Recorder {
  readonly events: OperatorEvent[] = [];
  private waiters: { test: (e: OperatorEvent) => boolean; resolve: (e: OperatorEvent) => void }[] = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (data: Buffer) => {
      const event = JSON.parse(data.toString('utf8')) as OperatorEvent;
      this.events.push(event);
      this.waiters = this.waiters.filter((w) => {
        if (!w.test(event)) return true;
        w.resolve(event);
        return false;
      });
    });
  }

  next<T extends OperatorEvent['type']>(type: T, since = 0): Promise<Extract<OperatorEvent, { type: T }>> {
    const test = (e: OperatorEvent): boolean => e.type === type;
    const seen = this.events.slice(since).find(test);
    if (seen !== undefined) return Promise.resolve(seen as Extract<OperatorEvent, { type: T }>);
    return new Promise((resolve) => this.waiters.push({ test, resolve: (e) => { resolve(e as Extract<OperatorEvent, { type: T }>); } }));
  }
}

let dir: string;
let socketPath: string;
let token: string;
let server: Server;
let broker: PromptBroker;
let channel: OperatorChannel;
const clients: WebSocket[] = [];

async function startServer(options: { heartbeatMs?: number } = {}): Promise<void> {
  server = createServer((_req, res) => {
    res.writeHead(404).end();
  });
  broker = createPromptBroker({ timeoutMs: 5_000, ruleFor: (p) => `${p.tool}(${p.target})` });
  channel = attachOperatorChannel(server, { token, broker, ...options });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cmdop-operator-'));
  socketPath = join(dir, 'agent.sock');
  token = createLocalToken();
});

afterEach(async () => {
  for (const ws of clients.splice(0)) ws.terminate();
  await channel.close();
  broker.close();
  await new Promise<void>((resolve) => server.close(() => { resolve(); }));
  await rm(dir, { recursive: true, force: true });
});

function url(path = OPERATOR_PATH): string {
  return `ws+unix://${socketPath}:${path}`;
}

/** Opens a client; resolves with the recorder once open, or rejects with the refusal's HTTP status. */
function open(headers: Record<string, string> = { authorization: `Bearer ${token}` }, path = OPERATOR_PATH): Promise<Recorder> {
  const ws = new WebSocket(url(path), { headers });
  clients.push(ws);
  const recorder = new Recorder(ws);
  return new Promise((resolve, reject) => {
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => { reject(Object.assign(new Error(`HTTP ${res.statusCode ?? 0}`), { status: res.statusCode, body })); });
    });
    ws.once('error', reject);
    ws.once('open', () => { resolve(recorder); });
  });
}

async function until(check: () => boolean, timeoutMs = 3_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('operator channel', () => {
  beforeEach(async () => {
    await startServer();
  });

  it.each([
    ['no Authorization header', {}],
    ['a wrong token', { authorization: `Bearer ${createLocalToken()}` }],
    ['the token without Bearer', { authorization: 'TOKEN' }],
    ['an empty bearer', { authorization: 'Bearer ' }],
  ])('refuses a handshake with %s: 401 before any upgrade', async (_what, headers: Record<string, string>) => {
    const refused = open(headers);
    await expect(refused).rejects.toMatchObject({ status: 401 });
    const body = JSON.parse(((await refused.catch((e: unknown) => e)) as { body: string }).body) as { error: { code: string } };
    expect(body.error.code).toBe('denied');
    expect(broker.operators()).toBe(0);
  });

  it('answers 404 for an upgrade on another path, even with the token', async () => {
    await expect(open({ authorization: `Bearer ${token}` }, '/v1/other')).rejects.toMatchObject({ status: 404 });
    expect(broker.operators()).toBe(0);
  });

  it('sends a snapshot, then prompts; an answer settles the ask and is confirmed', async () => {
    const op = await open();
    expect((await op.next('snapshot')).prompts).toEqual([]);
    const waiting = broker.ask(input);
    // A second operator sees what is already waiting in its snapshot.
    const late = await open();
    const snapshot = await late.next('snapshot');
    expect(snapshot.prompts).toHaveLength(1);
    const first = snapshot.prompts[0]!;
    expect(first).toMatchObject(input);
    expect((await op.next('prompt')).prompt).toEqual(first);

    const second = broker.ask({ ...input, target: '/srv/app/other.json' });
    const pushed = await late.next('prompt');
    expect(pushed.prompt.target).toBe('/srv/app/other.json');

    op.ws.send(JSON.stringify({ type: 'answer', id: first.id, decision: 'allow', scope: 'global' }));
    expect(await op.next('answered')).toEqual({ type: 'answered', id: first.id, rule: 'write_file(/srv/app/config.json)' });
    expect(await waiting).toMatchObject({ outcome: 'ask_allowed', answered_by: 'operator', scope: 'global' });
    expect(op.events).toContainEqual({ type: 'resolved', id: first.id, outcome: 'ask_allowed' });

    op.ws.send(JSON.stringify({ type: 'answer', id: pushed.prompt.id, decision: 'deny' }));
    expect((await second).outcome).toBe('ask_denied');
  });

  it('answers garbage with an error event and keeps the connection', async () => {
    const op = await open();
    await op.next('snapshot');
    const asked = broker.ask(input);
    const id = (await op.next('prompt')).prompt.id;
    const bad = [
      'not json {',
      JSON.stringify({ type: 'hello' }),
      JSON.stringify([1, 2]),
      JSON.stringify({ type: 'answer', id, decision: 'maybe' }),
      JSON.stringify({ type: 'answer', id, decision: 'allow', scope: 'forever' }),
      JSON.stringify({ type: 'answer', id, decision: 'allow', extra: true }),
      JSON.stringify({ type: 'answer', id, decision: 'deny', scope: 'global' }),
      JSON.stringify({ type: 'answer', id: 'f'.repeat(32), decision: 'allow' }),
    ];
    for (const message of bad) op.ws.send(message);
    op.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    await until(() => op.events.filter((e) => e.type === 'error').length === bad.length + 1);
    const errors = op.events.filter((e) => e.type === 'error');
    expect(errors[0]?.message).toMatch(/not JSON/);
    expect(errors.find((e) => e.id === 'f'.repeat(32))?.message).toMatch(/no prompt/);
    expect(errors.some((e) => e.id === id && /scope/.test(e.message))).toBe(true);
    expect(errors.at(-1)?.message).toMatch(/binary/);
    // Still attached, and the prompt still waits for a real answer.
    expect(broker.operators()).toBe(1);
    expect(op.ws.readyState).toBe(WebSocket.OPEN);
    op.ws.send(JSON.stringify({ type: 'answer', id, decision: 'allow' }));
    expect((await asked).outcome).toBe('ask_allowed');
  });

  it('cuts a message over 64 KiB, and detaching the last operator denies what waits', async () => {
    const op = await open();
    await op.next('snapshot');
    const asked = broker.ask(input);
    await op.next('prompt');
    const closed = new Promise<number>((resolve) => op.ws.once('close', (code: number) => { resolve(code); }));
    op.ws.send('x'.repeat(64 * 1024 + 1));
    expect(await closed).toBe(1009);
    expect(await asked).toMatchObject({ outcome: 'ask_denied', answered_by: 'nobody' });
    await until(() => broker.operators() === 0);
  });

  it('detaches an operator that closes its connection', async () => {
    const a = await open();
    const b = await open();
    await a.next('snapshot');
    await b.next('snapshot');
    expect(channel.connections()).toBe(2);
    a.ws.close();
    await until(() => broker.operators() === 1);
    b.ws.close();
    await until(() => broker.operators() === 0);
  });

  it('close() ends every connection and refuses later ones', async () => {
    const op = await open();
    await op.next('snapshot');
    const closed = new Promise<number>((resolve) => op.ws.once('close', (code: number) => { resolve(code); }));
    await channel.close();
    expect(await closed).toBe(1001);
    expect(broker.operators()).toBe(0);
    await expect(open()).rejects.toBeDefined();
  });
});

describe('operator channel heartbeat', () => {
  beforeEach(async () => {
    await startServer({ heartbeatMs: 100 });
  });

  it('keeps an operator that answers pings', async () => {
    const op = await open();
    await op.next('snapshot');
    await new Promise((r) => setTimeout(r, 450));
    expect(broker.operators()).toBe(1);
  });

  it('cuts an operator that stops answering pings, which denies what it was shown', async () => {
    // A client that completes the handshake by hand and then never reads or answers anything.
    const raw = connect(socketPath);
    raw.on('error', () => undefined);
    const handshake = new Promise<string>((resolve) => raw.once('data', (d: Buffer) => { resolve(d.toString('latin1')); }));
    await new Promise<void>((resolve) => raw.once('connect', resolve));
    raw.write(
      [`GET ${OPERATOR_PATH} HTTP/1.1`, 'Host: localhost', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', `Authorization: Bearer ${token}`, '', ''].join('\r\n'),
    );
    expect(await handshake).toMatch(/^HTTP\/1\.1 101/);
    await until(() => broker.operators() === 1);
    const asked = broker.ask(input);
    await until(() => broker.operators() === 0, 2_000);
    expect(await asked).toMatchObject({ outcome: 'ask_denied', answered_by: 'nobody' });
    raw.destroy();
  });
});

describe('operator client', () => {
  beforeEach(async () => {
    await startServer();
  });

  it('connects, streams events and answers through the channel', async () => {
    const connection = await connectOperator({ socketPath, token });
    const iterator = connection.events[Symbol.asyncIterator]();
    expect((await iterator.next()).value).toEqual({ type: 'snapshot', prompts: [] });
    const asked = broker.ask(input);
    const shown = (await iterator.next()).value as OperatorEvent;
    expect(shown).toMatchObject({ type: 'prompt', prompt: input });
    const id = broker.pending()[0]!.id;
    await expect(connection.answer({ id, decision: 'allow', scope: 'session' })).resolves.toEqual({ id, rule: 'write_file(/srv/app/config.json)' });
    expect(await asked).toMatchObject({ outcome: 'ask_allowed', scope: 'session' });
    await expect(connection.answer({ id, decision: 'allow' })).rejects.toMatchObject({ code: 'not_found' });
    connection.close();
    expect(await connection.closed).toEqual({ byDaemon: false });
  });

  it('says the daemon is not running when nothing listens, and config when the token is refused', async () => {
    const missing = await connectOperator({ socketPath: join(dir, 'nothing.sock'), token }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CmdopError);
    expect(missing).toMatchObject({ code: 'unavailable', message: 'the cmdop daemon is not running', hint: 'Start it with `cmdop agent start`.' });
    await expect(connectOperator({ socketPath, token: createLocalToken() })).rejects.toMatchObject({ code: 'config' });
  });

  it('ends the event stream when the daemon closes the channel', async () => {
    const connection = await connectOperator({ socketPath, token });
    const seen: OperatorEvent[] = [];
    const done = (async () => {
      for await (const event of connection.events) seen.push(event);
    })();
    await until(() => seen.length === 1);
    await channel.close();
    await done;
    expect(await connection.closed).toEqual({ byDaemon: true });
  });
});
