/**
 * Real processes against the built modules (dist/): concurrent writers must all land, a writer
 * killed with SIGKILL must never leave a torn file, and a lock left by a killed holder must clear.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { permissionsPath } from '../../src/config/cmdop-home.js';
import { loadConfig } from '../../src/config/config-file.js';
import { addRule, loadPermissions, updatePermissions } from '../../src/config/permissions-file.js';
import { builtConfigModule, createTempHome, removeTempHome } from './temp-home.js';

let home: string;
let scripts: string;
let modules: { permissions: string; config: string; secure: string };

beforeEach(async () => {
  home = await createTempHome();
  scripts = await createTempHome();
  // Resolved per test so that a missing or stale build fails each test with the message to run it.
  modules = {
    permissions: pathToFileURL(builtConfigModule('permissions-file')).href,
    config: pathToFileURL(builtConfigModule('config-file')).href,
    secure: pathToFileURL(builtConfigModule('secure-file')).href,
  };
});
afterEach(async () => {
  await removeTempHome(home);
  await removeTempHome(scripts);
});

async function script(name: string, body: string): Promise<string> {
  const path = join(scripts, name);
  await writeFile(path, body);
  return path;
}

interface Finished {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string;
}

function start(path: string, args: readonly string[]): { child: ChildProcess; done: Promise<Finished>; output: () => string } {
  const child = spawn(process.execPath, [path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const done = once(child, 'exit').then(([code, signal]) => ({ code: code as number | null, signal: signal as NodeJS.Signals | null, stderr }));
  return { child, done, output: () => stdout };
}

async function waitForOutput(output: () => string, text: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!output().includes(text)) {
    if (Date.now() > deadline) throw new Error(`child did not print ${JSON.stringify(text)} within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('concurrent writers in separate processes', () => {
  it('8 processes each adding an allow rule at the same moment: all 8 land', async () => {
    const writer = await script(
      'add-rule.mjs',
      `const [moduleUrl, home, index, startAt] = process.argv.slice(2);
const P = await import(moduleUrl);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())));
await P.updatePermissions(home, (doc) => P.addRule(doc, 'allow', 'execute_command(job-' + index + ' *)', { now: new Date() }).doc);
`,
    );
    const startAt = String(Date.now() + 1500);
    const children = Array.from({ length: 8 }, (_, i) => start(writer, [modules.permissions, home, String(i), startAt]));
    const results = await Promise.all(children.map((c) => c.done));
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });

    const doc = await loadPermissions(home);
    expect([...doc.allow].sort()).toEqual(Array.from({ length: 8 }, (_, i) => `execute_command(job-${i} *)`).sort());
    expect(Object.keys(doc.created_at)).toHaveLength(8);
    // No lock directory and no temp file left behind.
    expect(await readdir(home)).toEqual(['permissions.yaml']);
  });

  it('two processes setting different config keys at the same moment: both land', async () => {
    const setter = await script(
      'set-config.mjs',
      `const [moduleUrl, home, key, startAt] = process.argv.slice(2);
const C = await import(moduleUrl);
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Number(startAt) - Date.now())));
await C.setConfigValue(home, key, 'false');
`,
    );
    const startAt = String(Date.now() + 1500);
    const results = await Promise.all(
      ['permissions.enabled', 'permissions.self_bypass'].map((key) => start(setter, [modules.config, home, key, startAt]).done),
    );
    for (const result of results) expect(result, result.stderr).toMatchObject({ code: 0 });
    expect(await loadConfig(home)).toEqual(withDefaults(false, false));
  });
});

describe('a writer killed at random moments', () => {
  it('always leaves one complete version of permissions.yaml', async () => {
    // Each version i allows step-0 … step-i: a complete file is exactly such a prefix.
    const writer = await script(
      'write-loop.mjs',
      `const [permissionsUrl, secureUrl, home, file] = process.argv.slice(2);
const P = await import(permissionsUrl);
const S = await import(secureUrl);
const pad = 'x'.repeat(300);
let i = (await P.loadPermissions(home)).allow.length;
process.stdout.write('ready\\n');
for (;;) {
  const allow = Array.from({ length: i + 1 }, (_, k) => 'execute_command(step-' + k + ' ' + pad + ')');
  await S.writeFileAtomic(file, P.serialisePermissions({ ...P.EMPTY_PERMISSIONS, allow }));
  i++;
}
`,
    );
    const file = permissionsPath(home);
    const isCompleteVersion = (allow: readonly string[]): boolean =>
      allow.length > 0 && allow.every((rule, k) => rule === `execute_command(step-${k} ${'x'.repeat(300)})`);

    for (let round = 0; round < 8; round++) {
      const { child, done, output } = start(writer, [modules.permissions, modules.secure, home, file]);
      await waitForOutput(output, 'ready');
      await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * 200)));
      child.kill('SIGKILL');
      expect((await done).signal).toBe('SIGKILL');
      const doc = await loadPermissions(home);
      expect(isCompleteVersion(doc.allow), `round ${round}: ${doc.allow.length} rules`).toBe(true);
    }

    // Leftover temp files (if a kill landed mid-write) do not disturb loading, and the next
    // locked write clears them.
    const grown = await updatePermissions(home, (doc) => addRule(doc, 'deny', 'write_file(.env*)', { now: new Date() }).doc);
    expect(isCompleteVersion(grown.allow)).toBe(true);
    expect(await readdir(home)).toEqual(['permissions.yaml']);
  });

  it('a lock held by a killed process goes stale and the next writer takes it over', { timeout: 60_000 }, async () => {
    const holder = await script(
      'hold-lock.mjs',
      `const [moduleUrl, home] = process.argv.slice(2);
const P = await import(moduleUrl);
await P.updatePermissions(home, async () => {
  process.stdout.write('locked\\n');
  await new Promise(() => setInterval(() => {}, 1000));
});
`,
    );
    const { child, done, output } = start(holder, [modules.permissions, home]);
    await waitForOutput(output, 'locked');
    child.kill('SIGKILL');
    await done;
    expect(existsSync(`${permissionsPath(home)}.lock`)).toBe(true);

    const doc = await updatePermissions(home, (d) => addRule(d, 'allow', 'read_file', { now: new Date() }).doc);
    expect(doc.allow).toEqual(['read_file']);
    expect(await readdir(home)).toEqual(['permissions.yaml']);
  });
});

/** The whole config with these two permissions settings and every other at its default. */
function withDefaults(enabled: boolean, selfBypass: boolean): unknown {
  return { permissions: { enabled, self_bypass: selfBypass, ask_timeout: 60 }, agent: { listen: '127.0.0.1:8470', announce_interval: 15 } };
}
