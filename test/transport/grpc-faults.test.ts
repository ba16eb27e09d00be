/**
 * Faults the transport must survive (issue 3 §4, §9): deadlines and cancellation reach the
 * handler's signal, oversized and garbage input is refused while the server keeps serving, and
 * a server that goes away mid-call gives the caller 'unavailable' promptly, never a hang.
 */
import { connect as netConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import type { MeshServer } from '../../src/transport/grpc-server.js';
import { createPki, createRecordingHandler, Harness, type Pki } from './transport-fixtures.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

let pki: Pki;
const harness = new Harness();

beforeAll(async () => {
  pki = await createPki();
});

const proxies: TcpProxy[] = [];

afterEach(async () => {
  await Promise.all(proxies.splice(0).map((proxy) => proxy.stop()));
  await harness.closeAll();
});

afterAll(async () => {
  await harness.closeAll();
});

async function rejection(promise: Promise<unknown>): Promise<CmdopError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CmdopError);
  return error as CmdopError;
}

/** Sends `bytes` to the server's port on a raw socket and waits until the server closes it. */
function sendJunk(server: MeshServer, bytes: Buffer): Promise<void> {
  return new Promise((resolve) => {
    const socket = netConnect(server.port, '127.0.0.1', () => {
      socket.write(bytes);
    });
    socket.on('error', () => undefined);
    socket.setTimeout(2_000, () => socket.destroy());
    socket.on('close', () => {
      resolve();
    });
    socket.resume();
  });
}

describe('deadlines and cancellation', () => {
  it('a deadline shorter than a slow handler aborts the handler and gives the client unavailable', async () => {
    const handler = createRecordingHandler();
    handler.slow.add('ExecuteCommand');
    const server = await harness.server(pki.alpha, handler);
    const aborted = handler.nextAbort();
    const started = Date.now();
    const error = await rejection(harness.client(server, pki.beta).executeCommand({ command: 'sleep 100' }, { timeoutMs: 300 }));
    expect(error.code).toBe('unavailable');
    expect(error.message).toMatch(/did not answer within 300 ms/);
    expect(error.details).toMatchObject({ grpc_status: 'DEADLINE_EXCEEDED' });
    expect(Date.now() - started).toBeLessThan(2_000);
    await expect(aborted).resolves.toBeInstanceOf(CmdopError);
    const ctx = handler.calls[0]?.ctx;
    expect(ctx?.signal.aborted).toBe(true);
    expect(ctx?.deadline).toBeInstanceOf(Date);
  });

  it('aborting the client signal cancels the call and aborts the handler signal', async () => {
    const handler = createRecordingHandler();
    handler.slow.add('ReadFile');
    const server = await harness.server(pki.alpha, handler);
    const controller = new AbortController();
    const started = handler.nextCall();
    const aborted = handler.nextAbort();
    const call = harness.client(server, pki.beta).readFile({ path: '/big' }, { signal: controller.signal });
    await started;
    controller.abort();
    const error = await rejection(call);
    expect(error.code).toBe('tool_failed');
    expect(error.message).toMatch(/cancelled by the caller/);
    await expect(aborted).resolves.toMatchObject({ code: 'unavailable' });
  });

  it('a signal aborted before the call never sends it', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler);
    const error = await rejection(harness.client(server, pki.beta).ping({ signal: AbortSignal.abort() }));
    expect(error.code).toBe('tool_failed');
    expect(handler.calls).toEqual([]);
  });
});

describe('bad input does not stop the server', () => {
  it('an oversized request is refused and the next normal request succeeds', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler, { maxMessageBytes: 64 * 1024 });
    const client = harness.client(server, pki.beta, { maxMessageBytes: 4 * 1024 * 1024 });
    const error = await rejection(client.writeFile({ path: '/srv/big', content: Buffer.alloc(256 * 1024, 1) }));
    expect(error.code).toBe('invalid_input');
    expect(error.details).toMatchObject({ grpc_status: 'RESOURCE_EXHAUSTED' });
    expect(handler.calls).toEqual([]);
    await expect(client.writeFile({ path: '/srv/small', content: Buffer.from('ok') })).resolves.toMatchObject({ bytes: 2 });
  });

  it('garbage bytes on the port, in and after TLS, do not crash the server; a later good call works', async () => {
    const handler = createRecordingHandler();
    const server = await harness.server(pki.alpha, handler);
    await sendJunk(server, Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'));
    await sendJunk(server, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
    // A TLS client with a valid certificate that then speaks something other than HTTP/2.
    await new Promise<void>((resolve) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: server.port, servername: 'alpha', ca: pki.ca.certPem, key: pki.beta.keyPem, cert: pki.beta.certPem, ALPNProtocols: ['h2'] }, () => {
        socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\xff\xff\xff\xff\xff\xff\xff'));
      });
      socket.on('error', () => undefined);
      socket.setTimeout(2_000, () => socket.destroy());
      socket.on('close', () => {
        resolve();
      });
      socket.resume();
    });
    await expect(harness.client(server, pki.beta).ping()).resolves.toMatchObject({ host_name: 'alpha' });
    expect(handler.calls).toHaveLength(1);
  });
});

describe('a peer that goes away', () => {
  it('closing the server mid-call gives the client unavailable within two seconds and aborts the handler', async () => {
    const handler = createRecordingHandler();
    handler.slow.add('ExecuteCommand');
    const server = await harness.server(pki.alpha, handler);
    const started = handler.nextCall();
    const aborted = handler.nextAbort();
    const call = harness.client(server, pki.beta).executeCommand({ command: 'sleep 100' }, { timeoutMs: 60_000 });
    await started;
    const t0 = Date.now();
    await server.close(0);
    const error = await rejection(call);
    expect(error.code).toBe('unavailable');
    expect(error.exitCode).toBe(7);
    expect(Date.now() - t0).toBeLessThan(2_000);
    await expect(aborted).resolves.toBeInstanceOf(CmdopError);
  });

  it('a server that is not there gives unavailable promptly', async () => {
    const server = await harness.server(pki.alpha, createRecordingHandler());
    await server.close(0);
    const t0 = Date.now();
    const error = await rejection(harness.client(server, pki.beta).ping({ timeoutMs: 10_000 }));
    expect(error.code).toBe('unavailable');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('a peer process killed with SIGKILL mid-call gives the client unavailable within two seconds', async () => {
    const handler = createRecordingHandler();
    handler.slow.add('ExecuteCommand');
    const server = await harness.server(pki.alpha, handler);
    const proxy = await startTcpProxy('127.0.0.1', server.port);
    proxies.push(proxy);
    const started = handler.nextCall();
    const call = harness.client(server, pki.beta, { address: proxy.address, expectedHostName: 'alpha' }).executeCommand({ command: 'sleep 100' }, { timeoutMs: 60_000 });
    await started;
    const t0 = Date.now();
    proxy.child.kill('SIGKILL');
    const error = await rejection(call);
    expect(error.code).toBe('unavailable');
    expect(Date.now() - t0).toBeLessThan(2_000);
  });

  it('a peer that freezes mid-call (connection open, silent) is detected by keepalive, not the 60 s deadline', async () => {
    const handler = createRecordingHandler();
    handler.slow.add('ListDir');
    const server = await harness.server(pki.alpha, handler);
    const proxy = await startTcpProxy('127.0.0.1', server.port);
    proxies.push(proxy);
    const client = harness.client(server, pki.beta, { address: proxy.address, keepalive: { timeMs: 500, timeoutMs: 500 } });
    const started = handler.nextCall();
    const call = client.listDir({ path: '/srv' }, { timeoutMs: 60_000 });
    await started;
    const t0 = Date.now();
    proxy.child.kill('SIGSTOP');
    const error = await rejection(call);
    expect(error.code).toBe('unavailable');
    expect(Date.now() - t0).toBeLessThan(5_000);
  });
});
