/**
 * The OS-keyring store for real: a private D-Bus session (dbus-run-session) with
 * gnome-keyring-daemon unlocked in it, and keytar talking to it from the built module. And the
 * fallback where no keyring answers. CI installs dbus, gnome-keyring and libsecret (.ci/run);
 * where any of them is missing these tests fail, saying what to install.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { assertBuilt, CMDOP_BIN, REPO_ROOT } from '../helpers/run-cmdop.js';

const SECRET = 'cmdop_sk_live_keyring_5e8d2b7a91c3f40e';
const SERVICE = 'cmdop-mesh-test';
/** The login keyring's password inside the throwaway session; gnome-keyring refuses to create one with an empty password. */
const UNLOCK = `printf 'cmdop-test' | gnome-keyring-daemon --unlock --components=secrets >/dev/null`;

let dir: string;
let home: string;
let script: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cmdop-keyring-'));
  home = join(dir, 'cmdop-home');
  script = join(dir, 'secret-store-check.mjs');
  writeScript(script);
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

interface CheckOutput {
  readonly kind?: string;
  readonly location?: string;
  readonly reason?: string;
  readonly notices: readonly string[];
  readonly error?: { readonly code: string; readonly message: string; readonly hint: string | null };
  readonly got?: string | null;
  readonly gotOther?: string | null;
  readonly listed?: readonly string[];
  readonly deleted?: boolean;
  readonly deletedAgain?: boolean;
  readonly afterDelete?: string | null;
  readonly listedAfter?: readonly string[];
  readonly refused?: string;
}

/** Fails the test, naming what to install, when the keyring tooling is missing. */
function requireKeyringTools(): void {
  assertBuilt();
  const missing: string[] = [];
  for (const tool of ['dbus-run-session', 'gnome-keyring-daemon']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(`${tool} (apt-get install dbus gnome-keyring)`);
  }
  try {
    createRequire(join(REPO_ROOT, 'package.json')).resolve('keytar');
  } catch {
    missing.push('keytar (npm install; it builds against libsecret-1-dev: apt-get install libsecret-1-dev)');
  }
  if (missing.length > 0) throw new Error(`the keyring tests need ${missing.join(', ')}; CI installs them in .ci/run`);
}

/** The script run in the child: open the store the way cmdop does, then exercise it when asked. */
function writeScript(path: string): void {
  const module = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'identity', 'secret-store.js')).href;
  writeFileSync(
    path,
    `import { openSecretStore } from ${JSON.stringify(module)};
const service = ${JSON.stringify(SERVICE)};
const secret = process.env.TEST_SECRET;
const out = { notices: [] };
try {
  const store = await openSecretStore({ home: process.env.CMDOP_HOME, notice: (line) => out.notices.push(line) });
  Object.assign(out, { kind: store.kind, location: store.location, reason: store.reason });
  if (process.env.TEST_ROUNDTRIP === '1') {
    await store.set(service, 'alice', secret);
    await store.set(service, 'bob', 'other-secret');
    out.got = (await store.get(service, 'alice')) ?? null;
    out.gotOther = (await store.get(service, 'bob')) ?? null;
    out.listed = await store.list(service);
    try {
      await store.set(service, 'carol', secret.repeat(1000));
    } catch (error) {
      out.refused = error.message + '\\n' + error.hint;
    }
    out.deleted = await store.delete(service, 'alice');
    out.deletedAgain = await store.delete(service, 'alice');
    out.afterDelete = (await store.get(service, 'alice')) ?? null;
    out.listedAfter = await store.list(service);
    await store.delete(service, 'bob');
  }
} catch (error) {
  out.error = { code: error.code, message: error.message, hint: error.hint ?? null };
}
process.stdout.write(JSON.stringify(out) + '\\n');
`,
  );
}

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `command` with an environment that has no D-Bus session, display or keyring of the
 * machine's own, and a HOME in the test's directory (gnome-keyring keeps its files there).
 */
function run(command: string, args: readonly string[], env: Readonly<Record<string, string>> = {}): Promise<Run> {
  const base: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key === 'DBUS_SESSION_BUS_ADDRESS' || key === 'DISPLAY' || key === 'WAYLAND_DISPLAY' || key === 'CMDOP_SECRET_STORE' || key.startsWith('XDG_')) continue;
    base[key] = value;
  }
  const userHome = join(dir, 'user');
  const runtime = join(dir, 'runtime');
  mkdirSync(userHome, { recursive: true, mode: 0o700 });
  mkdirSync(runtime, { recursive: true, mode: 0o700 });
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      env: { ...base, HOME: userHome, XDG_RUNTIME_DIR: runtime, CMDOP_HOME: home, TEST_SECRET: SECRET, NO_COLOR: '1', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 25_000,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs `node ARGS` inside a private D-Bus session, with gnome-keyring unlocked in it unless `unlock` is false. */
function inKeyringSession(nodeArgs: readonly string[], env: Readonly<Record<string, string>> = {}, unlock = true): Promise<Run> {
  const quoted = [process.execPath, ...nodeArgs].map((arg) => `'${arg.replaceAll("'", `'\\''`)}'`).join(' ');
  return run('dbus-run-session', ['--', 'sh', '-c', `${unlock ? `${UNLOCK}; ` : ''}exec ${quoted}`], env);
}

function parse(result: Run): CheckOutput {
  const line = result.stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as CheckOutput;
  } catch {
    throw new Error(`the check script printed no JSON (exit ${String(result.code)}):\n${result.stdout}\n${result.stderr}`);
  }
}

describe('keyring secret store (gnome-keyring in a private D-Bus session)', () => {
  it('is chosen when the Secret Service answers, and sets, gets, lists and deletes there', async () => {
    requireKeyringTools();
    const result = await inKeyringSession([script], { TEST_ROUNDTRIP: '1' });
    const out = parse(result);
    expect(out.error).toBeUndefined();
    expect(out.kind, `expected the keyring; the store said: ${out.reason ?? ''}`).toBe('keyring');
    expect(out.location).toBe('OS keyring (Secret Service)');
    expect(out.notices).toEqual([]);
    expect(out.got).toBe(SECRET);
    expect(out.gotOther).toBe('other-secret');
    expect(out.listed).toEqual(['alice', 'bob']);
    expect(out.deleted).toBe(true);
    expect(out.deletedAgain).toBe(false);
    expect(out.afterDelete).toBeNull();
    expect(out.listedAfter).toEqual(['bob']);
    // An oversized secret is refused by name, never quoted.
    expect(out.refused).toContain(`the secret for ${SERVICE}/carol is longer than`);
    expect(out.refused).not.toContain(SECRET);
    // Nothing went to the file store.
    expect(existsSync(join(home, 'secrets.json'))).toBe(false);
    expect(result.code).toBe(0);
  });

  it('CMDOP_SECRET_STORE=file keeps secrets in the file even where the keyring works', async () => {
    requireKeyringTools();
    const out = parse(await inKeyringSession([script], { TEST_ROUNDTRIP: '1', CMDOP_SECRET_STORE: 'file' }));
    expect([out.kind, out.reason, out.notices]).toEqual(['file', 'CMDOP_SECRET_STORE=file', []]);
    expect(out.got).toBe(SECRET);
    expect(existsSync(join(home, 'secrets.json'))).toBe(true);
  });

  it('cmdop doctor reports the keyring and never prints a secret', async () => {
    requireKeyringTools();
    const result = await inKeyringSession([CMDOP_BIN, 'doctor', '--json'], { CMDOP_SECRET_STORE: 'keyring' });
    const report = JSON.parse(result.stdout) as { ok: boolean; secret_store: { kind: string; reason: string } };
    expect(report.secret_store).toEqual({ kind: 'keyring', location: 'OS keyring (Secret Service)', api_keys_location: 'OS keyring (Secret Service)', reason: 'CMDOP_SECRET_STORE=keyring' });
    expect(result.stdout + result.stderr).not.toContain(SECRET);
    expect(result.code).toBe(0);
  });
});

describe('workspace API keys in the keyring', () => {
  it('connect key set puts the key in the keyring, not in ssh_workspaces.json, and whoami reads it back', async () => {
    requireKeyringTools();
    const payload = Buffer.from(JSON.stringify({ v: 1, id: 'c'.repeat(32), name: 'ci', fp: 'd'.repeat(64), ws: 'acme' })).toString('base64url');
    const key = `cmdop-key.${payload}.${Buffer.alloc(32, 7).toString('base64url')}`;
    // Two sessions on one HOME: the second unlocks the same login keyring the first stored into.
    const stored = await inKeyringSession([CMDOP_BIN, 'connect', 'key', 'set', key, '--json']);
    expect(stored.code, stored.stderr).toBe(0);
    const read = await inKeyringSession([CMDOP_BIN, 'whoami', '--json']);
    expect(read.code, read.stderr).toBe(0);
    const set = JSON.parse(stored.stdout) as Record<string, unknown>;
    const who = JSON.parse(read.stdout) as Record<string, unknown>;
    expect(set).toMatchObject({ name: 'acme', principal: 'key:ci', store: 'keyring' });
    expect(who).toMatchObject({ source: 'active_workspace', principal: 'key:ci', workspace: 'acme' });
    expect(existsSync(join(home, 'ssh_workspaces.json'))).toBe(false);
    expect(stored.stdout + stored.stderr + read.stdout + read.stderr).not.toContain(key);
  });
});

describe('keyring fallback', () => {
  it('without a D-Bus session, falls back to the file store with one notice', async () => {
    requireKeyringTools();
    const out = parse(await run(process.execPath, [script], { TEST_ROUNDTRIP: '1' }));
    expect(out.kind).toBe('file');
    expect(out.location).toBe(join(home, 'secrets.json'));
    expect(out.notices).toHaveLength(1);
    expect(out.notices[0]).toMatch(/^no OS keyring available \(the OS keyring \(Secret Service\) is not usable: .+\); secrets are kept in .*secrets\.json \(0600\)$/);
    expect(out.reason).toMatch(/^no OS keyring available/);
    // And the file store works in its place.
    expect(out.got).toBe(SECRET);
    expect(out.listedAfter).toEqual(['bob']);
  });

  it('with a Secret Service that has no unlocked keyring, falls back with one notice', async () => {
    requireKeyringTools();
    const out = parse(await inKeyringSession([script], {}, false));
    expect(out.kind).toBe('file');
    expect(out.notices).toHaveLength(1);
    expect(out.notices[0]).toMatch(/^no OS keyring available \(.+\); secrets are kept in /);
  });

  it('CMDOP_SECRET_STORE=keyring without a keyring is a configuration error saying why', async () => {
    requireKeyringTools();
    const out = parse(await run(process.execPath, [script], { CMDOP_SECRET_STORE: 'keyring' }));
    expect(out.kind).toBeUndefined();
    expect(out.error?.code).toBe('config');
    expect(out.error?.message).toMatch(/^CMDOP_SECRET_STORE=keyring, but no OS keyring is available: the OS keyring \(Secret Service\) is not usable: .+/);
    expect(out.error?.hint).toContain('unset CMDOP_SECRET_STORE');
    expect(out.notices).toEqual([]);
  });
});
