import { chmodSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileSecretStore } from '../../src/identity/secret-store.js';
import { runCmdop, tempHome } from '../helpers/run-cmdop.js';

const SECRET = 'cmdop_sk_live_doctor_0a1b2c3d4e5f6789';
/** The file store, without probing a keyring (the keyring is tested in test/identity). */
const FILE_STORE = { CMDOP_SECRET_STORE: 'file' };

let home: string;
let cleanup: () => void;
beforeEach(() => {
  ({ home, cleanup } = tempHome('cmdop-doctor-'));
  chmodSync(home, 0o700);
});
afterEach(() => {
  cleanup();
});

interface Report {
  ok: boolean;
  cmdop_home: string;
  cmdop_home_exists: boolean;
  secret_store: { kind: string; location: string; api_keys_location: string; reason: string } | null;
  directories: { path: string; mode: string | null; expected: string }[];
  scanned: number;
  truncated: boolean;
  problems: { path: string; problem: string; fix: string }[];
}

/** A CMDOP_HOME as cmdop lays it out, every mode right. */
function healthyHome(): void {
  for (const sub of ['run', 'tls', 'logs']) mkdirSync(join(home, sub), { mode: 0o700 });
  chmodSync(join(home, 'run'), 0o700);
  chmodSync(join(home, 'tls'), 0o700);
  for (const file of ['permissions.yaml', 'config.yaml', 'tls/host.key', 'tls/host.crt', 'logs/audit.log']) writeFileSync(join(home, file), 'x\n', { mode: 0o600 });
}

describe('cmdop doctor', () => {
  it('reports a healthy home, the secret store and why, and exits 0', async () => {
    healthyHome();
    const text = await runCmdop(['doctor'], { home, env: FILE_STORE });
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(`CMDOP_HOME    ${home}\n`);
    expect(text.stdout).toContain(`secret store  file: ${join(home, 'secrets.json')} (OAuth tokens), ${join(home, 'ssh_workspaces.json')} (API keys)\n              because CMDOP_SECRET_STORE=file`);
    expect(text.stdout).toMatch(/run\/ +0700\n/);
    expect(text.stdout).toMatch(/tls\/ +0700\n/);
    expect(text.stdout).toContain('No problems found.');

    const json = await runCmdop(['doctor', '--json'], { home, env: FILE_STORE });
    expect(json.code).toBe(0);
    const report = JSON.parse(json.stdout) as Report;
    expect(report).toMatchObject({ ok: true, cmdop_home: home, cmdop_home_exists: true, truncated: false, problems: [] });
    expect(report.secret_store).toEqual({ kind: 'file', location: join(home, 'secrets.json'), api_keys_location: join(home, 'ssh_workspaces.json'), reason: 'CMDOP_SECRET_STORE=file' });
    expect(report.directories).toEqual([
      { path: join(home, 'run'), mode: '0700', expected: '0700' },
      { path: join(home, 'tls'), mode: '0700', expected: '0700' },
    ]);
    expect(report.scanned).toBe(8);
  });

  it('says when no keyring answers and the file store is used instead', async () => {
    // A bus address that leads nowhere: keytar fails at once.
    const run = await runCmdop(['doctor', '--json'], { home, env: { CMDOP_SECRET_STORE: '', DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, 'no-bus')}` } });
    expect(run.code).toBe(0);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.secret_store?.kind).toBe('file');
    expect(report.secret_store?.reason).toMatch(/^no OS keyring available \(.+\)$/);
  });

  it('reports a home that does not exist yet as no problem', async () => {
    const missing = join(home, 'not-yet');
    const run = await runCmdop(['doctor', '--json'], { home: missing, env: FILE_STORE });
    expect(run.code).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, cmdop_home: missing, cmdop_home_exists: false, scanned: 0 });
  });

  it('lists every loose file and directory with its fix, and exits 6', async () => {
    healthyHome();
    chmodSync(join(home, 'permissions.yaml'), 0o644);
    chmodSync(join(home, 'logs', 'audit.log'), 0o640);
    chmodSync(join(home, 'tls'), 0o755);
    chmodSync(join(home, 'logs'), 0o777);
    symlinkSync(join(home, 'config.yaml'), join(home, 'linked.yaml'));

    const json = await runCmdop(['doctor', '--json'], { home, env: FILE_STORE });
    expect(json.code).toBe(6);
    const report = JSON.parse(json.stdout) as Report;
    expect(report.ok).toBe(false);
    expect(report.directories[1]).toEqual({ path: join(home, 'tls'), mode: '0755', expected: '0700' });
    expect(report.problems).toEqual([
      { path: join(home, 'linked.yaml'), problem: 'is a symbolic link; cmdop refuses state files reached through a link', fix: `Replace the link with the file itself, or remove it: rm ${join(home, 'linked.yaml')}` },
      { path: join(home, 'logs'), problem: 'has mode 0777: group or others can change what is in it', fix: `chmod go-w ${join(home, 'logs')}` },
      { path: join(home, 'logs', 'audit.log'), problem: 'has mode 0640: group or others can access it', fix: `chmod 600 ${join(home, 'logs', 'audit.log')}` },
      { path: join(home, 'permissions.yaml'), problem: 'has mode 0644: group or others can access it', fix: `chmod 600 ${join(home, 'permissions.yaml')}` },
      { path: join(home, 'tls'), problem: 'has mode 0755; it must be 0700', fix: `chmod 700 ${join(home, 'tls')}` },
    ]);

    const text = await runCmdop(['doctor'], { home, env: FILE_STORE });
    expect(text.code).toBe(6);
    expect(text.stdout).toContain('5 problems:');
    expect(text.stdout).toContain(`  ${join(home, 'permissions.yaml')} has mode 0644: group or others can access it\n    fix: chmod 600 ${join(home, 'permissions.yaml')}`);
    expect(text.stdout).toMatch(/tls\/ +0755 \(expected 0700\)/);

    // Following the fixes clears the report.
    chmodSync(join(home, 'permissions.yaml'), 0o600);
    chmodSync(join(home, 'logs', 'audit.log'), 0o600);
    chmodSync(join(home, 'tls'), 0o700);
    chmodSync(join(home, 'logs'), 0o755);
    const fixed = await runCmdop(['doctor', '--json'], { home, env: FILE_STORE });
    expect((JSON.parse(fixed.stdout) as Report).problems.map((p) => p.path)).toEqual([join(home, 'linked.yaml')]);
  });

  it('flags a loose secrets file without ever printing a secret', async () => {
    await createFileSecretStore({ home }).set('cmdop', 'alice', SECRET);
    chmodSync(join(home, 'secrets.json'), 0o644);
    for (const args of [['doctor', '--json'], ['doctor']]) {
      const run = await runCmdop(args, { home, env: FILE_STORE });
      expect(run.code).toBe(6);
      expect(run.stdout).toContain(`chmod 600 ${join(home, 'secrets.json')}`);
      expect(run.stdout + run.stderr).not.toContain(SECRET);
    }
  });

  it('reports an invalid CMDOP_SECRET_STORE as a problem', async () => {
    const run = await runCmdop(['doctor', '--json'], { home, env: { CMDOP_SECRET_STORE: 'vault' } });
    expect(run.code).toBe(6);
    const report = JSON.parse(run.stdout) as Report;
    expect(report.secret_store).toBeNull();
    expect(report.problems).toEqual([
      {
        path: 'CMDOP_SECRET_STORE',
        problem: 'CMDOP_SECRET_STORE is "vault"; it must be "keyring" or "file"',
        fix: 'Set CMDOP_SECRET_STORE=file or CMDOP_SECRET_STORE=keyring, or unset it to let cmdop choose.',
      },
    ]);
  });

  it('has help with examples', async () => {
    const run = await runCmdop(['doctor', '--help'], { home });
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('cmdop doctor --json');
    expect(run.stdout).toContain('Exit status: 0 when all is well, 6 when a problem is found.');
  });
});
