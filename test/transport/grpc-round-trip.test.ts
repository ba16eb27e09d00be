/**
 * Every RPC goes through a real grpc-js server over mutual TLS and comes back as the tool's own
 * result type; the handler gets the validated request and the caller from the certificate.
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import type { MeshServer } from '../../src/transport/grpc-server.js';
import { CODE_TRAILER } from '../../src/transport/grpc-status.js';
import { createPki, createRecordingHandler, Harness, rawCall, type Pki, type RecordingHandler } from './transport-fixtures.js';

let pki: Pki;
const harness = new Harness();
let handler: RecordingHandler;
let server: MeshServer;

beforeAll(async () => {
  pki = await createPki();
});

afterEach(async () => {
  await harness.closeAll();
});

afterAll(async () => {
  await harness.closeAll();
});

async function start(): Promise<void> {
  handler = createRecordingHandler();
  server = await harness.server(pki.alpha, handler);
}

describe('round trips', () => {
  it('Ping returns the host name and version, with the caller from beta certificate', async () => {
    await start();
    const client = harness.client(server, pki.beta, { expectedHostName: 'alpha' });
    await expect(client.ping()).resolves.toEqual({ host_name: 'alpha', version: '0.1.0' });
    expect(handler.calls[0]?.caller).toMatchObject({ kind: 'remote', host: 'beta', principal: 'host:beta', certificate: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown });
  });

  it('ExecuteCommand carries command, cwd and timeout and returns the tool result with the decision', async () => {
    await start();
    const client = harness.client(server, pki.beta);
    const reply = await client.executeCommand({ command: 'echo hi', cwd: '/tmp', timeout_ms: 1_000 });
    expect(handler.calls[0]?.request).toEqual({ command: 'echo hi', cwd: '/tmp', timeout_ms: 1_000 });
    expect(Object.isFrozen(handler.calls[0]?.request)).toBe(true);
    expect(reply).toEqual({
      decision: { decision: 'allow', source: 'rule', rule: 'execute_command(echo *)', rule_id: 'a'.repeat(64), scope: 'global', reason: 'allowed by rule' },
      exit_code: 0,
      signal: null,
      stdout: 'ran: echo hi\n',
      stderr: 'ünïcødé ✓',
      truncated: { stdout: false, stderr: true },
      timed_out: false,
      aborted: false,
      duration_ms: 12,
    });
    expect(Object.isFrozen(reply)).toBe(true);
  });

  it('ExecuteCommand without cwd or timeout leaves them unset for the receiver to default', async () => {
    await start();
    await harness.client(server, pki.beta).executeCommand({ command: 'true' });
    expect(handler.calls[0]?.request).toEqual({ command: 'true' });
  });

  it('ReadFile carries the range and returns binary content intact', async () => {
    await start();
    const reply = await harness.client(server, pki.beta).readFile({ path: '/srv/blob', offset: 2, length: 4 });
    expect(handler.calls[0]?.request).toEqual({ path: '/srv/blob', offset: 2, length: 4 });
    expect(reply.encoding).toBe('base64');
    expect(Buffer.from(reply.content, 'base64')).toEqual(Buffer.from([0, 0xff, 0x10, 0x80]));
    expect(reply).toMatchObject({ path: '/srv/blob', size: 4, offset: 2, bytes: 4, truncated: false, eof: true, decision: { decision: 'allow', source: 'mode' } });
  });

  it('ReadFile with length 0 is a zero-length read, not "to the end"', async () => {
    await start();
    await harness.client(server, pki.beta).readFile({ path: '/srv/blob', length: 0 });
    expect(handler.calls[0]?.request).toEqual({ path: '/srv/blob', offset: 0, length: 0 });
  });

  it('WriteFile carries bytes and mode', async () => {
    await start();
    const content = Buffer.from([1, 2, 3, 0, 255]);
    const reply = await harness.client(server, pki.beta).writeFile({ path: '/srv/out', content, mode: 0o600 });
    expect(handler.calls[0]?.request).toEqual({ path: '/srv/out', content, mode: 0o600 });
    expect(reply).toEqual({ decision: { decision: 'allow', source: 'mode', reason: 'default mode allows read tools' }, path: '/srv/out', bytes: 5, created: true });
  });

  it('ListDir returns entries, with sizes for files only', async () => {
    await start();
    const reply = await harness.client(server, pki.beta).listDir({ path: '/srv' });
    expect(reply.entries).toEqual([
      { name: 'a.txt', type: 'file', size: 3 },
      { name: 'sub', type: 'dir' },
    ]);
    expect(reply.path).toBe('/srv');
  });

  it('a handler refusal reaches the caller as the same CmdopError code, message and hint', async () => {
    await start();
    handler.readFile = () => Promise.reject(new CmdopError('denied', 'read_file(/etc/shadow) is denied by the floor', { hint: 'Ask for a path outside /etc — ünicode ok.' }));
    const error = await harness.client(server, pki.beta).readFile({ path: '/etc/shadow' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CmdopError);
    expect(error).toMatchObject({ code: 'denied', message: 'read_file(/etc/shadow) is denied by the floor', hint: 'Ask for a path outside /etc — ünicode ok.' });
  });

  it('an unexpected handler error is a bare internal error: no message text, no stack', async () => {
    await start();
    handler.listDir = () => Promise.reject(new Error('secret internals at /home/op/.cmdop/x'));
    const raw = harness.rawClient(server, pki.ca.certPem, pki.beta);
    const outcome = await rawCall(raw, 'ListDir', { path: '/srv' });
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.code).toBe(GrpcStatus.INTERNAL);
    expect(outcome.error.details).not.toContain('secret');
    expect(outcome.error.details).not.toMatch(/at .*\.ts:\d+/);
    expect(outcome.error.metadata.get(CODE_TRAILER)).toEqual(['internal']);
  });
});

describe('validation of incoming messages', () => {
  it.each([
    ['an empty command', 'ExecuteCommand', { command: '' }],
    ['a command with NUL', 'ExecuteCommand', { command: 'ls\0-la' }],
    ['an empty path', 'ReadFile', { path: '' }],
    ['an offset beyond 2^53', 'ReadFile', { path: '/x', offset: '18446744073709551615' }],
    ['a mode beyond 0o7777', 'WriteFile', { path: '/x', mode: 0o17777 }],
    ['a path with NUL', 'ListDir', { path: '/x\0y' }],
  ] as const)('%s is INVALID_ARGUMENT and never reaches the handler', async (_what, method, message) => {
    await start();
    const raw = harness.rawClient(server, pki.ca.certPem, pki.beta);
    const outcome = await rawCall(raw, method, message);
    expect(outcome.ok).toBe(false);
    if (outcome.ok) return;
    expect(outcome.error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(outcome.error.metadata.get(CODE_TRAILER)).toEqual(['invalid_input']);
    expect(handler.calls).toEqual([]);
  });

  it('bytes that are not a protobuf message are INVALID_ARGUMENT, and the server keeps serving', async () => {
    await start();
    const raw = harness.rawClient(server, pki.ca.certPem, pki.beta);
    const outcome = await rawCall(raw, 'ReadFile', Buffer.from([0xff, 0xff, 0xff, 0xff]));
    expect(outcome.ok ? undefined : outcome.error.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(handler.calls).toEqual([]);
    await expect(harness.client(server, pki.beta).ping()).resolves.toMatchObject({ host_name: 'alpha' });
  });

  it('the client refuses to send a request it knows is malformed', async () => {
    await start();
    const error = await harness.client(server, pki.beta).listDir({ path: '' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'invalid_input' });
    expect(handler.calls).toEqual([]);
  });

  it('a malformed reply from the peer is an internal error at the client, not a crash', async () => {
    await start();
    // The decision's source is not one the gate can give.
    handler.writeFile = (_caller, request) =>
      Promise.resolve({ decision: { decision: 'allow', source: 'vibes' as 'mode', reason: '' }, path: request.path, bytes: 0, created: false });
    const error = await harness.client(server, pki.beta).writeFile({ path: '/x', content: Buffer.alloc(0) }).catch((e: unknown) => e);
    // The server checks its own replies too: it answers internal rather than send a bad message.
    expect(error).toMatchObject({ code: 'internal' });
  });
});
