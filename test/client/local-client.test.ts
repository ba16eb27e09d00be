/**
 * The SDK client against a FAKE daemon (see fake-daemon.ts for why it is fake): a real HTTP
 * server on a real unix socket, so token, framing, error mapping and socket failures are real.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createClient, localRequest, shellExitCode } from '../../src/index.js';
import { CmdopError } from '../../src/errors.js';
import { LOCAL_ROUTES } from '../../src/transport/local-api.js';
import { failure } from '../config/temp-home.js';
import { BINARY, DENY_RM, FAKE_TOKEN, startFakeDaemon, type FakeDaemon } from './fake-daemon.js';

let daemon: FakeDaemon;
beforeEach(async () => {
  daemon = await startFakeDaemon();
});
afterEach(async () => {
  await daemon.close();
});

describe('createClient against the local socket', () => {
  it('sends the local token as a bearer header and returns the typed replies', async () => {
    const client = createClient({ home: daemon.home });
    const status = await client.status();
    expect(status.host_name).toBe('laptop');
    expect((await client.peers()).peers[0]?.name).toBe('vps-audi');
    expect((await client.sessionRules()).allow).toEqual(['read_file(/srv/**)']);
    const reply = await client.exec('vps-audi', 'echo hi', { cwd: '/srv', timeoutMs: 5000 });
    expect(reply.result.stdout).toBe('hi\n');
    expect(reply.decision.decision).toBe('allow');
    expect(daemon.seen.every((r) => r.authorization === `Bearer ${FAKE_TOKEN}`)).toBe(true);
    expect(daemon.seen.at(-1)).toMatchObject({
      method: 'POST',
      path: '/v1/call',
      body: { host: 'vps-audi', tool: 'execute_command', request: { command: 'echo hi', cwd: '/srv', timeout_ms: 5000 } },
    });
  });

  it('maps a 403 ErrorReply to denied, keeping message, hint and the decision in details', async () => {
    const error = await failure(createClient({ home: daemon.home }).exec('vps-audi', 'rm -rf /'));
    expect(error.code).toBe('denied');
    expect(error.exitCode).toBe(3);
    expect(error.message).toContain('recursive delete');
    expect(error.hint).toBe('The floor cannot be overridden.');
    expect(error.details).toEqual({ decision: DENY_RM, hostname: 'vps-audi' });
  });

  it('maps a 404 ErrorReply to not_found', async () => {
    const error = await failure(createClient({ home: daemon.home }).listDir('nosuch', '/'));
    expect(error).toMatchObject({ code: 'not_found', message: 'unknown host "nosuch"', hint: 'List the hosts with `cmdop peers list`.', details: { host: 'nosuch' } });
    expect(error.exitCode).toBe(4);
  });

  it('a wrong token is refused by the daemon and reported as denied', async () => {
    const error = await failure(createClient({ home: daemon.home, token: 'not-the-token' }).status());
    expect(error.code).toBe('denied');
    expect(error.message).toContain('local token');
  });

  it('round-trips binary content through base64 unchanged', async () => {
    const client = createClient({ home: daemon.home });
    const read = await client.readFile('vps-audi', '/srv/blob.bin');
    expect(Buffer.compare(read.content, BINARY)).toBe(0);
    expect(read.result).toMatchObject({ path: '/srv/blob.bin', size: BINARY.length, bytes: BINARY.length });
    expect(read.result).not.toHaveProperty('content_base64');

    const written = await client.writeFile('vps-audi', '/tmp/copy.bin', new Uint8Array(BINARY.buffer, BINARY.byteOffset, 100), { mode: 0o600 });
    expect(written.result).toEqual({ path: '/tmp/copy.bin', bytes: 100, created: true });
    expect(daemon.seen.at(-1)?.body).toMatchObject({ tool: 'write_file', request: { mode: 0o600, content_base64: BINARY.subarray(0, 100).toString('base64') } });
    const back = await client.readFile('vps-audi', '/tmp/copy.bin', { offset: 10, length: 20 });
    expect(Buffer.compare(back.content, BINARY.subarray(10, 30))).toBe(0);
  });

  it('refuses a read reply whose content does not match its byte count', async () => {
    daemon.handle(() => ({ status: 200, body: { hostname: 'vps-audi', tool: 'read_file', decision: { decision: 'allow', source: 'mode', reason: 'x' }, result: { path: '/x', size: 3, offset: 0, bytes: 3, content_base64: 'YQ==', truncated: false, eof: true } } }));
    const error = await failure(createClient({ home: daemon.home }).readFile('vps-audi', '/x'));
    expect(error.code).toBe('internal');
    expect(error.message).toContain('says 3 bytes but carries 1');
  });
});

describe('when the daemon is not there or misbehaves', () => {
  it('no daemon at all: unavailable at once, naming the socket and how to start it', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cmdop-client-none-'));
    try {
      const started = Date.now();
      const error = await failure(createClient({ home }).status());
      expect(Date.now() - started).toBeLessThan(2000);
      expect(error.code).toBe('unavailable');
      expect(error.exitCode).toBe(7);
      expect(error.message).toBe(`the cmdop daemon is not running (no socket at ${join(home, 'run', 'agent.sock')})`);
      expect(error.hint).toBe('Start it with `cmdop agent start`.');
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('a socket file left behind by a killed daemon (ECONNREFUSED): unavailable, not running', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cmdop-client-stale-'));
    try {
      const run = join(home, 'run');
      mkdirSync(run, { mode: 0o700 });
      writeFileSync(join(run, 'local.token'), 'x', { mode: 0o600 });
      const socketPath = join(run, 'agent.sock');
      // A process killed while listening leaves its socket file behind, with no one accepting.
      const listenAndDie = `require('node:net').createServer().listen(${JSON.stringify(socketPath)}, () => process.kill(process.pid, 'SIGKILL'))`;
      spawnSync(process.execPath, ['-e', listenAndDie]);
      expect(existsSync(socketPath)).toBe(true);
      const error = await failure(createClient({ home }).status());
      expect(error.code).toBe('unavailable');
      expect(error.message).toContain('is not running');
      expect(error.details).toMatchObject({ errno: 'ECONNREFUSED' });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('a daemon that dies mid-reply: unavailable promptly, not a hang', async () => {
    const started = Date.now();
    const error = await failure(createClient({ home: daemon.home }).exec('vps-audi', 'crash'));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.code).toBe('unavailable');
    expect(error.message).toContain('stopped in the middle of its reply');
  });

  it('a daemon that never answers: unavailable after the deadline, naming it', async () => {
    daemon.handle(() => ({ kind: 'hang' }));
    const started = Date.now();
    const error = await failure(createClient({ home: daemon.home, timeoutMs: 300 }).status());
    expect(Date.now() - started).toBeLessThan(2000);
    expect(error.code).toBe('unavailable');
    expect(error.message).toContain('did not answer GET /v1/status within 300 ms');
    expect(error.details).toMatchObject({ timeout_ms: 300 });
    const exec = await failure(createClient({ home: daemon.home }).exec('vps-audi', 'slow', { timeoutMs: 1000, deadlineMs: 200 }));
    expect(exec.message).toContain('within 200 ms');
  });

  it('an exec call waits at least for its command timeout plus the grace', async () => {
    daemon.handle(async () => {
      await new Promise((resolve) => setTimeout(resolve, 500));
      return { status: 200, body: { hostname: 'vps-audi', tool: 'execute_command', decision: { decision: 'allow', source: 'mode', reason: 'x' }, result: { exit_code: 0, signal: null, stdout: '', stderr: '', stdout_truncated: false, stderr_truncated: false, timed_out: false, duration_ms: 500 } } };
    });
    // The client's own deadline (100 ms) is shorter than the command may take; exec is not cut off by it.
    const reply = await createClient({ home: daemon.home, timeoutMs: 100 }).exec('vps-audi', 'sleep 0.5', { timeoutMs: 1000 });
    expect(reply.result.exit_code).toBe(0);
  });

  it('an aborted call stops at once and says it was cancelled', async () => {
    daemon.handle(() => ({ kind: 'hang' }));
    const controller = new AbortController();
    const pending = createClient({ home: daemon.home }).exec('vps-audi', 'slow', { signal: controller.signal });
    setTimeout(() => { controller.abort(); }, 50);
    const error = await failure(pending);
    expect(error.details).toMatchObject({ cancelled: true });
    const before = await failure(createClient({ home: daemon.home }).status({ signal: AbortSignal.abort() }));
    expect(before.details).toMatchObject({ cancelled: true });
  });

  it('refuses to send the token through a run/ directory others can write to', async () => {
    chmodSync(join(daemon.home, 'run'), 0o777);
    try {
      const error = await failure(createClient({ home: daemon.home }).status());
      expect(error.code).toBe('config');
      expect(daemon.seen).toHaveLength(0);
    } finally {
      chmodSync(join(daemon.home, 'run'), 0o700);
    }
  });

  it('a reply that is not an ErrorReply still becomes a CmdopError from its status', async () => {
    daemon.handle(() => ({ status: 503, body: 'overloaded' }));
    const error = await failure(localRequest({ home: daemon.home }, LOCAL_ROUTES.status));
    expect(error).toBeInstanceOf(CmdopError);
    expect(error.code).toBe('unavailable');
  });
});

describe('shellExitCode', () => {
  it.each([
    [{ exit_code: 0, signal: null }, 0],
    [{ exit_code: 42, signal: null }, 42],
    [{ exit_code: null, signal: 'SIGKILL' }, 137],
    [{ exit_code: null, signal: 'SIGTERM' }, 143],
  ])('%o -> %i', (output, code) => {
    expect(shellExitCode(output)).toBe(code);
  });
});
