import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { verifyApiKey } from '../../src/identity/api-key.js';
import { runCmdop, tempHome, type CmdopRun } from '../helpers/run-cmdop.js';

let home: string;
let cleanup: () => void;
beforeEach(() => {
  ({ home, cleanup } = tempHome());
});
afterEach(() => {
  cleanup();
});

const cmdop = (...args: string[]): Promise<CmdopRun> => runCmdop(args, { home });

async function initCaHost(): Promise<void> {
  const init = await cmdop('workspace', 'init', '--name', 't', '--host-name', 'h');
  expect(init.code, init.stderr).toBe(0);
}

interface CreatedJson {
  key: string;
  id: string;
  name: string;
  expires_at: string | null;
  ca_fingerprint: string;
  principal: string;
  note: string;
}

async function createKey(...args: string[]): Promise<CreatedJson> {
  const run = await cmdop('workspace', 'keys', 'create', ...args, '--json');
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as CreatedJson;
}

const secretOf = (key: string): string => key.split('.')[2] ?? '';

describe('cmdop workspace keys', () => {
  it('has help for the topic and each command, with examples and exit codes', async () => {
    const topic = await cmdop('workspace', 'keys', '--help');
    expect(topic.code).toBe(0);
    for (const verb of ['create', 'list', 'revoke']) expect(topic.stdout).toContain(`workspace keys ${verb}`);
    for (const verb of ['create', 'list', 'revoke']) {
      const help = await cmdop('workspace', 'keys', verb, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('EXAMPLES');
      expect(help.stdout).toContain('Exit codes');
    }
  });

  it('creates a key shown once, lists it without the secret, and revokes it', async () => {
    await initCaHost();
    const created = await cmdop('workspace', 'keys', 'create', '--name', 'ci-deploy', '--ttl', '90d');
    expect(created.code, created.stderr).toBe(0);
    const key = created.stdout.trim();
    expect(key).toMatch(/^cmdop-key\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(created.stderr).toContain('only a hash');
    expect(created.stderr).not.toContain(secretOf(key));

    const file = join(home, 'api-keys.json');
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readFileSync(file, 'utf8')).not.toContain(secretOf(key));
    await expect(verifyApiKey(home, key)).resolves.toMatchObject({ name: 'ci-deploy', principal: 'key:ci-deploy' });

    const listed = await cmdop('workspace', 'keys', 'list');
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/NAME\s+ID\s+CREATED\s+LAST USED\s+EXPIRES\s+STATE/);
    expect(listed.stdout).toMatch(/ci-deploy\s+[0-9a-f]{32}\s+\S+\s+\S+\s+\S+\s+active/);
    const listedJson = await cmdop('workspace', 'keys', 'list', '--json');
    expect(listedJson.code).toBe(0);
    const result = JSON.parse(listedJson.stdout) as { file: string; keys: Record<string, unknown>[] };
    expect(result.file).toBe(file);
    expect(result.keys).toHaveLength(1);
    expect(Object.keys(result.keys[0] ?? {}).sort()).toEqual(['created_at', 'expires_at', 'id', 'last_used_at', 'name', 'revoked_at', 'state']);
    expect(result.keys[0]?.last_used_at).not.toBeNull();
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { keys: { secretHash: string }[] };
    for (const out of [listed.stdout, listed.stderr, listedJson.stdout, listedJson.stderr]) {
      expect(out).not.toContain(secretOf(key));
      expect(out).not.toContain(stored.keys[0]?.secretHash);
    }

    const revoked = await cmdop('workspace', 'keys', 'revoke', 'ci-deploy');
    expect(revoked.code, revoked.stderr).toBe(0);
    expect(revoked.stdout).toContain('revoked API key "ci-deploy"');
    const error = await verifyApiKey(home, key).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'denied' });
    const after = JSON.parse((await cmdop('workspace', 'keys', 'list', '--json')).stdout) as { keys: { state: string }[] };
    expect(after.keys.map((k) => k.state)).toEqual(['revoked']);
  });

  it('gives the key, its expiry and the CA fingerprint with --json', async () => {
    await initCaHost();
    const created = await createKey('--name', 'ci', '--ttl', '1d');
    expect(created.name).toBe('ci');
    expect(created.principal).toBe('key:ci');
    expect(created.ca_fingerprint).toMatch(/^[0-9a-f]{64}$/);
    expect(Date.parse(created.expires_at ?? '') - Date.now()).toBeGreaterThan(23 * 3_600_000);
    expect(created.note).toContain('only a hash');
    const forever = await createKey('--name', 'laptop');
    expect(forever.expires_at).toBeNull();
  });

  it('lands every key of several concurrent create processes', async () => {
    await initCaHost();
    const names = ['a', 'b', 'c', 'd', 'e'];
    const runs = await Promise.all(names.map((name) => cmdop('workspace', 'keys', 'create', '--name', name, '--json')));
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    const listed = JSON.parse((await cmdop('workspace', 'keys', 'list', '--json')).stdout) as { keys: { name: string }[] };
    expect(listed.keys.map((k) => k.name).sort()).toEqual(names);
  });

  it('refuses on a host without the CA key: exit 6 with a hint', async () => {
    const run = await cmdop('workspace', 'keys', 'create', '--name', 'ci');
    expect(run.code).toBe(6);
    expect(run.stderr).toContain('does not hold the workspace CA');
    expect(run.stderr).toContain('CA host');
    const json = await cmdop('workspace', 'keys', 'create', '--name', 'ci', '--json');
    expect(json.code).toBe(6);
    expect((JSON.parse(json.stdout) as { error: { code: string } }).error.code).toBe('config');
  });

  it.each([
    [['--name', 'Bad Name'], 'not a valid API key name'],
    [['--name', 'ci', '--ttl', 'soon'], '--ttl must be a positive duration'],
    [['--name', 'ci', '--ttl', '3651d'], 'lifetime'],
    [[], 'name'],
  ])('refuses bad input %j with exit 2', async (args, says) => {
    // Input is checked before the CA is looked for, so no workspace is needed here.
    const run = await cmdop('workspace', 'keys', 'create', ...args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(says);
    expect(run.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  it('refuses a second key of the same name with exit 2, without showing the first', async () => {
    await initCaHost();
    const first = await createKey('--name', 'ci');
    const again = await cmdop('workspace', 'keys', 'create', '--name', 'ci', '--json');
    expect(again.code).toBe(2);
    expect((JSON.parse(again.stdout) as { error: { message: string } }).error.message).toContain('already exists');
    expect(again.stdout + again.stderr).not.toContain(secretOf(first.key));
  });

  it('revoking an unknown name exits 4; --json says not_found', async () => {
    await initCaHost();
    const run = await cmdop('workspace', 'keys', 'revoke', 'nope');
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('no API key named "nope"');
    const json = await cmdop('workspace', 'keys', 'revoke', 'nope', '--json');
    expect(json.code).toBe(4);
    expect((JSON.parse(json.stdout) as { error: { code: string } }).error.code).toBe('not_found');
  });

  it('lists no keys on a fresh host', async () => {
    const run = await cmdop('workspace', 'keys', 'list', '--json');
    expect(run.code).toBe(0);
    expect((JSON.parse(run.stdout) as { keys: unknown[] }).keys).toEqual([]);
    expect((await cmdop('workspace', 'keys', 'list')).stdout).toContain('no API keys');
  });
});
