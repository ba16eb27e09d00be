/**
 * Who is gated (DESIGN.md §4.5), against real daemons: a host calling itself over mTLS is not
 * gated (the floor still applies), a peer that claims the receiver's name in metadata is, and
 * certificates of another workspace, expired ones or none are refused before the gate and
 * audited as such. The raw grpc-js client here sends what a hostile peer would; the daemon
 * under test is real.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHostKeyAndCsr, loadHostIdentity, signHostCsr, type HostIdentity } from '../../src/identity/host-cert.js';
import { createWorkspaceCa, loadCa, tlsDir } from '../../src/identity/workspace-ca.js';
import { createMeshClient } from '../../src/transport/grpc-client.js';
import { meshWire } from '../../src/transport/mesh-proto.js';
import { eventually, makeHost, makeWorkspace, mustRun, type TestHost } from '../helpers/mesh-hosts.js';

let cleanup: () => Promise<void>;
let alpha: TestHost;
let beta: TestHost;
let alphaId: HostIdentity;
let betaId: HostIdentity;

beforeAll(async () => {
  const made = await makeWorkspace(['alpha', 'beta'], { askTimeoutSeconds: 2 });
  cleanup = made.cleanup;
  [alpha, beta] = made.hosts as [TestHost, TestHost];
  alphaId = (await loadHostIdentity(tlsDir(alpha.home))) as HostIdentity;
  betaId = (await loadHostIdentity(tlsDir(beta.home))) as HostIdentity;
}, 120_000);

afterAll(async () => {
  await cleanup();
});

interface RawReply {
  ok: boolean;
  code?: number | undefined;
  message?: string | undefined;
  reply?: { decision?: { source?: string; decision?: string }; stdout?: string } | undefined;
}

/** One ExecuteCommand call with any key, certificate and metadata, as a hostile peer makes it. */
function rawExecute(address: string, tls: { keyPem: string; certPem: string; caCertPem: string }, command: string, metadata: Readonly<Record<string, string>> = {}): Promise<RawReply> {
  const method = meshWire().methods.ExecuteCommand;
  const creds = credentials.createSsl(Buffer.from(tls.caCertPem), Buffer.from(tls.keyPem), Buffer.from(tls.certPem), { checkServerIdentity: () => undefined });
  const client = new Client(address, creds, { 'grpc.ssl_target_name_override': 'cmdop-peer' });
  const md = new Metadata();
  for (const [k, v] of Object.entries(metadata)) md.set(k, v);
  return new Promise((resolveCall) => {
    client.makeUnaryRequest(
      method.path,
      (m: object) => method.serializeRequest(m),
      (b: Buffer) => method.deserializeResponse(b),
      { command, cwd: '' },
      md,
      { deadline: Date.now() + 10_000 },
      (error: ServiceError | null, reply?: unknown) => {
        client.close();
        resolveCall(error === null ? { ok: true, reply: reply as RawReply['reply'] } : { ok: false, code: error.code, message: error.details });
      },
    );
  });
}

describe('self-to-self', () => {
  it('this host calling itself with its own certificate is not gated, and is audited as self', async () => {
    const client = createMeshClient({ address: alpha.address, tls: alphaId, expectedHostName: 'alpha' });
    try {
      const reply = await client.executeCommand({ command: 'uname -s' });
      expect(reply.stdout).toBe('Linux\n');
      expect(reply.decision).toMatchObject({ decision: 'allow', source: 'self' });
      // The floor still applies to this host calling itself.
      await expect(client.executeCommand({ command: 'cat ~/.ssh/id_rsa' })).rejects.toMatchObject({ code: 'denied' });
    } finally {
      client.close();
    }
    const line = alpha.audit().find((l) => l.target === 'uname -s');
    expect(line).toMatchObject({ decision: 'allow', source: 'self', hostname: 'alpha', user: 'host:alpha' });
  });

  it('a peer with its own valid certificate that claims the receiver\'s name in metadata is gated', async () => {
    const r = await rawExecute(alpha.address, betaId, 'uname -n', { 'x-cmdop-host': 'alpha', 'x-cmdop-principal': 'host:alpha', host: 'alpha', 'x-forwarded-for': '127.0.0.2' });
    // Default mode asks for execute_command; no operator is connected: denied.
    expect(r.ok).toBe(false);
    expect(r.message).toMatch(/no operator/);
    const line = alpha.audit().find((l) => l.target === 'uname -n');
    expect(line).toMatchObject({ decision: 'ask_denied', hostname: 'beta', user: 'host:beta' });
  });

  it('permissions.self_bypass: false gates this host too, from the next call on', async () => {
    await mustRun(alpha, ['config', 'set', 'permissions.self_bypass', 'false']);
    try {
      const r = await rawExecute(alpha.address, alphaId, 'uname -v');
      expect(r.ok).toBe(false);
      expect(alpha.audit().find((l) => l.target === 'uname -v')).toMatchObject({ decision: 'ask_denied', hostname: 'alpha' });
    } finally {
      await mustRun(alpha, ['config', 'set', 'permissions.self_bypass', 'true']);
    }
  });
});

describe('a second certificate for an existing name', () => {
  it('signed by the real workspace CA for another key, it is not this host: it is gated', async () => {
    const ca = await loadCa(tlsDir(alpha.home));
    if (ca === undefined) throw new Error('alpha holds no CA');
    const { keyPem, csrPem } = await createHostKeyAndCsr('alpha');
    const certPem = await signHostCsr(ca, csrPem, { hostName: 'alpha' });
    const r = await rawExecute(alpha.address, { keyPem, certPem, caCertPem: ca.certPem }, 'uname -o');
    expect(r.ok).toBe(false);
    expect(alpha.audit().find((l) => l.target === 'uname -o')).toMatchObject({ decision: 'ask_denied', hostname: 'alpha' });
  });

  it('the CA never issues a name twice, even after the host was removed from its roster', async () => {
    await mustRun(alpha, ['peers', 'remove', 'beta']);
    const invite = await alpha.json<{ token: string }>(['workspace', 'invite', '--ttl', '5m']);
    const root = mkdtempSync(join(tmpdir(), 'cmdop-squat-'));
    try {
      const squatter = makeHost('beta', '127.0.0.9', root);
      const r = await squatter.run(['join', invite.body.token, '--server', alpha.address, '--name', 'beta']);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/already (taken|issued)/);
      const reserved = await squatter.run(['join', invite.body.token, '--server', alpha.address, '--name', 'localhost']);
      expect(reserved.code).toBe(2);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('refused before the gate', () => {
  it('a certificate of another workspace naming this host is refused and audited as an identity refusal', async () => {
    const otherCa = await createWorkspaceCa({ name: 'elsewhere' });
    const { keyPem, csrPem } = await createHostKeyAndCsr('alpha');
    const certPem = await signHostCsr(otherCa, csrPem, { hostName: 'alpha' });
    const before = alpha.audit().length;
    const r = await rawExecute(alpha.address, { keyPem, certPem, caCertPem: alphaId.caCertPem }, 'id');
    expect(r.ok).toBe(false);
    expect(r.code).toBe(16); // UNAUTHENTICATED
    // Nothing ran, so the refusal's line is written after the answer: wait for it.
    const refused = await eventually('the refusal line on alpha', () => Promise.resolve(alpha.audit().length > before ? alpha.audit().slice(before) : undefined));
    expect(refused).toHaveLength(1);
    expect(refused[0]).toMatchObject({ decision: 'deny', source: 'identity', hostname: 'unauthenticated', tool: 'execute_command' });
  });

  it('an expired certificate of this very workspace is refused', async () => {
    const ca = await loadCa(tlsDir(alpha.home));
    if (ca === undefined) throw new Error('alpha holds no CA');
    const { keyPem, csrPem } = await createHostKeyAndCsr('beta');
    const longAgo = new Date(Date.now() - 10 * 86_400_000);
    const certPem = await signHostCsr(ca, csrPem, { hostName: 'beta', validDays: 1, now: longAgo });
    const r = await rawExecute(alpha.address, { keyPem, certPem, caCertPem: ca.certPem }, 'date');
    expect(r.ok).toBe(false);
    expect(r.code).toBe(16);
    expect(alpha.audit().some((l) => l.target === 'date')).toBe(false);
  });

  it('no client certificate at all is refused', async () => {
    const method = meshWire().methods.ExecuteCommand;
    const creds = credentials.createSsl(Buffer.from(alphaId.caCertPem), null, null, { checkServerIdentity: () => undefined });
    const client = new Client(alpha.address, creds, { 'grpc.ssl_target_name_override': 'cmdop-peer' });
    const code = await new Promise<number>((resolveCall) => {
      client.makeUnaryRequest(method.path, (m: object) => method.serializeRequest(m), (b: Buffer) => method.deserializeResponse(b), { command: 'whoami', cwd: '' }, new Metadata(), { deadline: Date.now() + 10_000 }, (error: ServiceError | null) => {
        client.close();
        resolveCall(error?.code ?? 0);
      });
    });
    expect(code).toBe(16);
    expect(alpha.audit().some((l) => l.target === 'whoami')).toBe(false);
  });

  it('beta, a member, reaches alpha normally afterwards', async () => {
    await mustRun(alpha, ['permissions', 'allow', 'execute_command(echo *)']);
    const r = await beta.run(['connect', 'exec', 'alpha', '--', 'echo', 'still fine']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('still fine\n');
  });
});
