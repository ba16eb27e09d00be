/**
 * Faults a user of the mesh can run into, with real daemons started from the built binary:
 * the receiving daemon killed mid-call, a receiver whose audit log cannot be written, and a
 * client that sends garbage, no certificate or an oversized message. Each test asserts what a
 * user notices: the exit code and how soon, whether the command ran, what the audit log says,
 * and that the daemon goes on serving everyone else.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { connect as netConnect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { credentials } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import { loadHostIdentity } from '../../src/identity/host-cert.js';
import { tlsDir } from '../../src/identity/workspace-ca.js';
import { ANY_PEER_SERVERNAME, channelArgs, createChannel, unaryCall } from '../../src/transport/grpc-channel.js';
import { createMeshClient } from '../../src/transport/grpc-client.js';
import { childPids, fillFileSystem, makeFaultWorkspace, type FaultWorkspace } from '../helpers/faults-workspace.js';
import { eventually, mustRun, type TestHost } from '../helpers/mesh-hosts.js';

// Addresses of their own, so these daemons never meet those of other mesh tests.
const ALPHA_IP = '127.0.0.21';
const BETA_IP = '127.0.0.22';
const GAMMA_IP = '127.0.0.23';

let workspace: FaultWorkspace;
let alpha: TestHost;
let beta: TestHost;
let gamma: TestHost;

beforeAll(async () => {
  // Every host listens on port 0, as by default; a restarted daemon takes its previous port again.
  workspace = await makeFaultWorkspace([
    { name: 'alpha', ip: ALPHA_IP },
    { name: 'beta', ip: BETA_IP },
    { name: 'gamma', ip: GAMMA_IP, logsTmpfsKiB: 256 },
  ]);
  [alpha, beta, gamma] = workspace.hosts as [TestHost, TestHost, TestHost];
  await eventually('beta to see alpha and gamma online', async () => {
    const { body } = await beta.json<{ peers: PeerRow[] }>(['peers', 'list']);
    return body.peers.filter((p) => p.online).length === 3 ? true : undefined;
  });
}, 120_000);

afterAll(async () => {
  await workspace.cleanup();
}, 60_000);

interface PeerRow {
  name: string;
  address: string;
  online: boolean;
}

/** What every fault must leave working: beta's allowed call to alpha, and alpha's own status. */
async function expectAlphaStillServes(): Promise<void> {
  const r = await beta.run(['connect', 'exec', 'alpha', '--', 'echo ok']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toBe('ok\n');
  const status = await alpha.json<{ host_name: string; pid: number }>(['agent', 'status']);
  expect(status.code).toBe(0);
  expect(status.body).toMatchObject({ host_name: 'alpha', pid: alpha.pid() });
}

async function rejection(promise: Promise<unknown>): Promise<CmdopError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CmdopError);
  return error as CmdopError;
}

describe('the receiving daemon is killed mid-call', () => {
  it('the caller gets exit 7 at once; a restart takes over the stale pid file, the roster recovers and the audit shows the interrupted call', async () => {
    await mustRun(alpha, ['permissions', 'allow', 'execute_command(sleep *)']);
    await mustRun(alpha, ['permissions', 'allow', 'execute_command(echo *)']);
    const call = beta.run(['connect', 'exec', 'alpha', '--', 'sleep 31']);
    const decision = await eventually('alpha to audit the decision for sleep 31', () =>
      Promise.resolve(alpha.audit().find((l) => l.event === 'decision' && l.target === 'sleep 31')),
    );
    expect(decision).toMatchObject({ decision: 'allow', hostname: 'beta' });
    const oldPid = alpha.pid();
    const oldAddress = alpha.address;
    // The command runs in its own process group; kill it too once the daemon is gone.
    const orphans = childPids(oldPid);
    const killedAt = Date.now();
    process.kill(oldPid, 'SIGKILL');
    const r = await call;
    const waited = Date.now() - killedAt;
    for (const pid of orphans) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    expect(r.code, r.stderr).toBe(7);
    expect(r.stderr).toMatch(/unreachable/);
    expect(waited).toBeLessThan(10_000);

    // The pid file still names the dead daemon: start must take it over.
    expect(alpha.pid()).toBe(oldPid);
    await alpha.start();
    expect(alpha.pid()).not.toBe(oldPid);
    // Peers find the CA host only where they last learnt it, so it must come back there.
    expect(alpha.address, 'alpha restarted on another port; its peers cannot find the CA host there').toBe(oldAddress);
    await eventually('beta to see alpha online again at the address alpha now reports', async () => {
      const { body } = await beta.json<{ peers: PeerRow[] }>(['peers', 'list']);
      const row = body.peers.find((p) => p.name === 'alpha');
      return row?.online === true && row.address === alpha.address ? row : undefined;
    });
    await eventually('alpha (the CA host) to hear from beta again', async () => {
      const { body } = await alpha.json<{ peers: PeerRow[] }>(['peers', 'list']);
      return body.peers.find((p) => p.name === 'beta')?.online === true ? true : undefined;
    });

    // The interrupted call: its decision line, and no outcome (or an interrupted one).
    const lines = alpha.audit().filter((l) => l.call_id === decision.call_id);
    expect(lines[0]).toMatchObject({ event: 'decision', target: 'sleep 31' });
    const outcome = lines.find((l) => l.event === 'outcome');
    if (outcome !== undefined) expect(outcome).toMatchObject({ outcome: { status: 'interrupted' } });
    else expect(lines).toHaveLength(1);
    // What the operator sees: the call in `permissions audit`, and no torn line to skip.
    const audit = await alpha.run(['permissions', 'audit', '--json', '-n', '100']);
    expect(audit.code).toBe(0);
    expect(audit.stderr).not.toMatch(/skipped/);
    const shown = audit.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(shown.filter((l) => l.call_id === decision.call_id).map((l) => l.event)).toEqual(lines.map((l) => l.event));

    await expectAlphaStillServes();
  }, 60_000);
});

describe('the receiver cannot write its audit log', () => {
  it('an allowed command does not run: the caller gets exit 1 saying why; once space is freed calls run again', async () => {
    const mountError = workspace.mountErrors.get('gamma');
    if (mountError !== undefined) throw new Error(`this test needs gamma's logs on a tiny tmpfs, and it could not be mounted: ${mountError}`);
    await mustRun(gamma, ['permissions', 'allow', 'execute_command(touch *)']);
    await mustRun(gamma, ['permissions', 'allow', 'execute_command(echo *)']);
    // A tmpfs allocates whole pages: an audit file with a part-filled page could take one
    // more line without new space. Nothing has called gamma yet, so the file has no page.
    const before = gamma.audit();
    expect(before).toEqual([]);
    const marker = join(tmpdir(), `cmdop-fault-${String(process.pid)}`);
    rmSync(marker, { force: true });
    const filler = fillFileSystem(join(gamma.home, 'logs'));
    try {
      const r = await beta.run(['connect', 'exec', 'gamma', '--', `touch ${marker}`]);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr).toMatch(/cannot write its audit log/);
      expect(existsSync(marker)).toBe(false);
      // Still refused on the next call: the sink stays failed while the disk is full.
      const again = await beta.run(['connect', 'exec', 'gamma', '--', `touch ${marker}`]);
      expect(again.code).toBe(1);
      expect(existsSync(marker)).toBe(false);
      const status = await gamma.json<{ host_name: string }>(['agent', 'status']);
      expect(status.code).toBe(0);
    } finally {
      unlinkSync(filler);
      rmSync(marker, { force: true });
    }
    // The daemon reopens a failed audit log every few seconds; with space again, calls run.
    await eventually(
      'gamma to run calls again once its disk has space',
      async () => {
        const r = await beta.run(['connect', 'exec', 'gamma', '--', 'echo back']);
        return r.code === 0 && r.stdout === 'back\n' ? true : undefined;
      },
      20_000,
    );
    const lines = gamma.audit();
    expect(lines.some((l) => typeof l.target === 'string' && l.target.includes(marker))).toBe(false);
    expect(lines.filter((l) => l.target === 'echo back').map((l) => l.event)).toEqual(['decision', 'outcome']);
  }, 60_000);
});

describe('a client that sends garbage', () => {
  /** Writes `bytes` on a fresh connection and reports whether the server closed it within 5 s. */
  function sendJunk(open: () => Socket, bytes: Buffer): Promise<'closed by the server' | 'still open after 5 s'> {
    return new Promise((resolve) => {
      const socket = open();
      socket.once('connect', () => socket.write(bytes));
      socket.once('secureConnect', () => socket.write(bytes));
      socket.on('error', () => undefined);
      const timer = setTimeout(() => {
        resolve('still open after 5 s');
        socket.destroy();
      }, 5_000);
      socket.on('close', () => {
        clearTimeout(timer);
        resolve('closed by the server');
      });
      socket.resume();
    });
  }

  const port = (): number => Number(alpha.address.slice(alpha.address.lastIndexOf(':') + 1));

  it('random bytes and a bogus HTTP/2 preface, in the clear and inside TLS, are dropped; the daemon serves on', async () => {
    const plain = (): Socket => netConnect(port(), ALPHA_IP);
    expect(await sendJunk(plain, randomBytes(8192))).toBe('closed by the server');
    expect(await sendJunk(plain, Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\xff\xff\xff\xff\xff\xff\xff'))).toBe('closed by the server');
    // Inside TLS, with beta's real certificate: the handshake passes, then HTTP/2 is garbage.
    const identity = await loadHostIdentity(tlsDir(beta.home));
    if (identity === undefined) throw new Error('beta has no identity');
    const tls = (): Socket =>
      tlsConnect({ host: ALPHA_IP, port: port(), servername: ANY_PEER_SERVERNAME, ca: identity.caCertPem, key: identity.keyPem, cert: identity.certPem, ALPNProtocols: ['h2'], checkServerIdentity: () => undefined });
    expect(await sendJunk(tls, Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\xff\xff\xff\xff\xff\xff\xff'))).toBe('closed by the server');
    expect(await sendJunk(tls, randomBytes(8192))).toBe('closed by the server');
    await expectAlphaStillServes();
  });

  it('a TLS client without a certificate is refused before the gate, the command does not run, and the refusal is audited', async () => {
    await mustRun(alpha, ['permissions', 'allow', 'execute_command(touch *)']);
    const identity = await loadHostIdentity(tlsDir(beta.home));
    if (identity === undefined) throw new Error('beta has no identity');
    const marker = join(tmpdir(), `cmdop-nocert-${String(process.pid)}`);
    rmSync(marker, { force: true });
    // Trusts alpha's CA, but presents no certificate of its own.
    const channel = createChannel(
      alpha.address,
      credentials.createSsl(Buffer.from(identity.caCertPem), null, null, { checkServerIdentity: () => undefined }),
      channelArgs({ maxMessageBytes: 8 * 1024 * 1024, keepalive: { timeMs: 10_000, timeoutMs: 5_000 }, servername: ANY_PEER_SERVERNAME }),
    );
    try {
      const error = await rejection(unaryCall(channel, 'ExecuteCommand', { command: `touch ${marker}` }, { address: alpha.address, timeoutMs: 10_000, serverIdentityError: () => undefined }));
      expect(error.code).toBe('denied');
      expect(error.details).toMatchObject({ grpc_status: 'UNAUTHENTICATED' });
      const ping = await rejection(unaryCall(channel, 'Ping', {}, { address: alpha.address, timeoutMs: 10_000, serverIdentityError: () => undefined }));
      expect(ping.details).toMatchObject({ grpc_status: 'UNAUTHENTICATED' });
    } finally {
      channel.client.close();
    }
    expect(existsSync(marker)).toBe(false);
    await eventually('alpha to audit the refusal', () =>
      Promise.resolve(alpha.audit().find((l) => l.tool === 'execute_command' && l.hostname === 'unauthenticated' && l.decision === 'deny' && l.source === 'identity')),
    );
    await expectAlphaStillServes();
  });

  it('a 9 MiB write_file from a real member is refused by the 8 MiB limit, nothing is written, and the daemon serves on', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cmdop-big-'));
    try {
      await mustRun(alpha, ['permissions', 'allow', `write_file(${dir}/**)`]);
      const identity = await loadHostIdentity(tlsDir(beta.home));
      if (identity === undefined) throw new Error('beta has no identity');
      // The client allows more than the server, so it is the server's limit that refuses.
      const client = createMeshClient({ address: alpha.address, tls: identity, expectedHostName: 'alpha', maxMessageBytes: 32 * 1024 * 1024 });
      try {
        const error = await rejection(client.writeFile({ path: join(dir, 'big.bin'), content: Buffer.alloc(9 * 1024 * 1024, 0x61) }));
        expect(error.details).toMatchObject({ grpc_status: 'RESOURCE_EXHAUSTED' });
        expect(existsSync(join(dir, 'big.bin'))).toBe(false);
        // The same client, the same rule, a small file: the limit was the only reason.
        await expect(client.writeFile({ path: join(dir, 'small.txt'), content: Buffer.from('small\n') })).resolves.toMatchObject({ bytes: 6 });
        expect(existsSync(join(dir, 'small.txt'))).toBe(true);
      } finally {
        client.close();
      }
      await expectAlphaStillServes();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
