import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseShareToken, verifyShare } from '../../src/identity/share-link.js';
import { runCmdop, tempHome, type CmdopRun } from '../helpers/run-cmdop.js';

let home: string;
let cleanup: () => void;
let outputs: string[];
beforeEach(() => {
  ({ home, cleanup } = tempHome());
  outputs = [];
});
afterEach(() => {
  // Whatever happened, no stored hash ever reached the terminal.
  const file = join(home, 'shares.json');
  if (existsSync(file)) {
    const stored = JSON.parse(readFileSync(file, 'utf8')) as { shares: { secretHash: string }[] };
    for (const { secretHash } of stored.shares) for (const out of outputs) expect(out).not.toContain(secretHash);
  }
  cleanup();
});

async function cmdop(args: readonly string[], stdin?: string): Promise<CmdopRun> {
  const run = await runCmdop(args, stdin === undefined ? { home } : { home, stdin });
  outputs.push(run.stdout, run.stderr);
  return run;
}

const HOST = 'h';
const sharesFile = (): string => join(home, 'shares.json');
const secretOf = (token: string): string => token.split('.')[2] ?? '';

async function initWorkspace(): Promise<void> {
  const init = await cmdop(['workspace', 'init', '--name', 't', '--host-name', HOST]);
  expect(init.code, init.stderr).toBe(0);
}

interface MintedJson {
  token: string;
  id: string;
  host: string;
  address: string;
  created_at: string;
  expires_at: string;
  principal: string;
}

async function mintJson(...args: string[]): Promise<MintedJson> {
  const run = await cmdop(['connect', 'share', HOST, ...args, '--json']);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as MintedJson;
}

interface ShareJson {
  id: string;
  host: string;
  state: string;
  revoked_at: string | null;
  last_used_at: string | null;
}

async function listJson(): Promise<{ file: string; shares: ShareJson[] }> {
  const run = await cmdop(['connect', 'share', 'list', '--json']);
  expect(run.code, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { file: string; shares: ShareJson[] };
}

describe('cmdop connect share', () => {
  it('has help for the topic and each command, with examples and exit codes', async () => {
    const topic = await cmdop(['connect', 'share', '--help']);
    expect(topic.code).toBe(0);
    for (const verb of ['list', 'revoke']) {
      const help = await cmdop(['connect', 'share', verb, '--help']);
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('EXAMPLES');
      expect(help.stdout).toContain('Exit codes');
    }
    expect(topic.stdout).toContain('EXAMPLES');
    expect(topic.stdout).toContain('Exit codes');
    const connect = await cmdop(['connect', '--help']);
    expect(connect.stdout).toMatch(/connect share\s+Share links/);
  });

  it("mints a link for this host: the token alone on stdout, a note on stderr, only a hash kept", async () => {
    await initWorkspace();
    const run = await cmdop(['connect', 'share', HOST, '--ttl', '90m']);
    expect(run.code, run.stderr).toBe(0);
    const token = run.stdout.trim();
    expect(run.stdout).toBe(`${token}\n`);
    expect(token).toMatch(/^cmdop-share\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    const claims = parseShareToken(token);
    expect(claims).toMatchObject({ host: HOST, address: '127.0.0.1:8470', caFingerprint: expect.stringMatching(/^[0-9a-f]{64}$/) as unknown });
    // 90 minutes round up to 2 hours.
    expect(claims.expiresAt.getTime() - Date.now()).toBeGreaterThan(119 * 60_000);
    expect(claims.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(120 * 60_000);

    expect(run.stderr).toContain(`valid until ${claims.expiresAt.toISOString()}`);
    expect(run.stderr).toContain(`guest:${claims.id}`);
    expect(run.stderr).toContain('Treat it like a password');
    expect(run.stderr).toContain(`cmdop connect share revoke ${claims.id}`);
    expect(run.stderr).not.toContain(secretOf(token));

    expect(statSync(sharesFile()).mode & 0o777).toBe(0o600);
    expect(readFileSync(sharesFile(), 'utf8')).not.toContain(secretOf(token));
    await expect(verifyShare(home, token, { hostName: HOST, now: new Date() })).resolves.toMatchObject({ id: claims.id, principal: `guest:${claims.id}` });
    await expect(verifyShare(home, token, { hostName: 'other', now: new Date() })).rejects.toMatchObject({ code: 'denied' });
  });

  it('gives id, host, address, times, principal and token with --json, and takes --address', async () => {
    await initWorkspace();
    const minted = await mintJson('--ttl', '2d', '--address', 'build.example.net:9000');
    expect(Object.keys(minted).sort()).toEqual(['address', 'created_at', 'expires_at', 'host', 'id', 'principal', 'token']);
    expect(minted).toMatchObject({ host: HOST, address: 'build.example.net:9000', principal: `guest:${minted.id}` });
    expect(Date.parse(minted.expires_at) - Date.parse(minted.created_at)).toBe(48 * 3_600_000);
    expect(parseShareToken(minted.token)).toMatchObject({ id: minted.id, address: 'build.example.net:9000' });
    const byDefault = await mintJson();
    expect(Date.parse(byDefault.expires_at) - Date.parse(byDefault.created_at)).toBe(24 * 3_600_000);
  });

  it('refuses another host name (exit 2), saying to run it on that host, and writes nothing', async () => {
    await initWorkspace();
    const run = await cmdop(['connect', 'share', 'vps-audi']);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain('"vps-audi" is not this host (this is h)');
    expect(run.stderr).toContain('on that host');
    const json = await cmdop(['connect', 'share', 'vps-audi', '--json']);
    expect(json.code).toBe(2);
    expect((JSON.parse(json.stdout) as { error: { code: string; details: unknown } }).error).toMatchObject({ code: 'invalid_input', details: { host: 'vps-audi', self: HOST } });
    expect(existsSync(sharesFile())).toBe(false);
  });

  it.each([
    [['--ttl', 'soon'], '--ttl must be a positive duration'],
    [['--ttl', '0h'], '--ttl must be a positive duration'],
    [['--ttl', '721h'], '720 hours'],
    [['--ttl', '31d'], '720 hours'],
    [['--address', 'no-port'], 'not a HOST:PORT address'],
  ])('refuses %j with exit 2 and no state change', async (args, says) => {
    await initWorkspace();
    const run = await cmdop(['connect', 'share', HOST, ...args]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(says);
    expect(run.stderr).not.toMatch(/\bat .*\.js:\d+/);
    expect(existsSync(sharesFile())).toBe(false);
  });

  it('refuses on a host in no workspace: exit 6, pointing at agent start or join', async () => {
    const run = await cmdop(['connect', 'share', HOST]);
    expect(run.code).toBe(6);
    expect(run.stderr).toContain('in no workspace');
    expect(run.stderr).toContain('cmdop agent start');
    expect(run.stderr).toContain('cmdop join');
    const json = await cmdop(['connect', 'share', HOST, '--json']);
    expect((JSON.parse(json.stdout) as { error: { code: string } }).error.code).toBe('config');
  });

  it('refuses when no address is known (agent.listen on port 0, no daemon) unless --address is given', async () => {
    await initWorkspace();
    expect((await cmdop(['config', 'set', 'agent.listen', '127.0.0.1:0'])).code).toBe(0);
    const run = await cmdop(['connect', 'share', HOST]);
    expect(run.code).toBe(7);
    expect(run.stderr).toContain('--address');
    expect(existsSync(sharesFile())).toBe(false);
    expect((await mintJson('--address', '10.0.0.5:8470')).address).toBe('10.0.0.5:8470');
  });

  it('lists links with their state, never a link or its hash', async () => {
    await initWorkspace();
    const empty = await cmdop(['connect', 'share', 'list']);
    expect(empty.code).toBe(0);
    expect(empty.stdout).toContain('no share links');
    expect((await listJson()).shares).toEqual([]);

    const first = await mintJson('--ttl', '1h');
    const second = await mintJson();
    await expect(verifyShare(home, second.token, { hostName: HOST, now: new Date() })).resolves.toMatchObject({ id: second.id });
    const listed = await cmdop(['connect', 'share', 'list']);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/ID\s+HOST\s+CREATED\s+EXPIRES\s+LAST USED\s+STATE/);
    expect(listed.stdout).toMatch(new RegExp(`${first.id}\\s+h\\s+\\S+\\s+\\S+\\s+never\\s+active`));
    expect(listed.stdout).toMatch(new RegExp(`${second.id}\\s+h\\s+\\S+\\s+\\S+\\s+\\d{4}-\\S+\\s+active`));
    const json = await listJson();
    expect(json.file).toBe(sharesFile());
    expect(json.shares.map((share) => share.id)).toEqual([first.id, second.id]);
    expect(Object.keys(json.shares[0] ?? {}).sort()).toEqual(['created_at', 'expires_at', 'host', 'id', 'last_used_at', 'revoked_at', 'state']);
    expect(listed.stdout + JSON.stringify(json)).not.toContain(secretOf(first.token));
    expect(listed.stdout + JSON.stringify(json)).not.toContain(secretOf(second.token));
    expect(JSON.stringify(json)).not.toContain('secretHash');
  });

  it('revokes one link by id, then refuses it again with exit 4', async () => {
    await initWorkspace();
    const kept = await mintJson();
    const gone = await mintJson();
    const run = await cmdop(['connect', 'share', 'revoke', gone.id]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toContain(`revoked share link ${gone.id} (for h)`);
    await expect(verifyShare(home, gone.token, { hostName: HOST, now: new Date() })).rejects.toMatchObject({ code: 'denied' });
    await expect(verifyShare(home, kept.token, { hostName: HOST, now: new Date() })).resolves.toMatchObject({ id: kept.id });
    expect((await listJson()).shares.map((share) => share.state)).toEqual(['active', 'revoked']);

    const again = await cmdop(['connect', 'share', 'revoke', gone.id, '--json']);
    expect(again.code).toBe(4);
    expect((JSON.parse(again.stdout) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'not_found', message: expect.stringContaining('already revoked') as unknown });
    const unknown = await cmdop(['connect', 'share', 'revoke', 'f'.repeat(32)]);
    expect(unknown.code).toBe(4);
    expect(unknown.stderr).toContain('no share link');
    expect((await cmdop(['connect', 'share', 'revoke', 'not-an-id'])).code).toBe(2);
  });

  it('revokes every active link with --all, and none when none is left', async () => {
    await initWorkspace();
    const a = await mintJson();
    const b = await mintJson();
    const run = await cmdop(['connect', 'share', 'revoke', '--all', '--json']);
    expect(run.code, run.stderr).toBe(0);
    const result = JSON.parse(run.stdout) as { revoked: ShareJson[] };
    expect(result.revoked.map((share) => [share.id, share.state])).toEqual([
      [a.id, 'revoked'],
      [b.id, 'revoked'],
    ]);
    expect(run.stdout).not.toContain('secretHash');
    for (const { token } of [a, b]) await expect(verifyShare(home, token, { hostName: HOST, now: new Date() })).rejects.toMatchObject({ code: 'denied' });
    const none = await cmdop(['connect', 'share', 'revoke', '--all']);
    expect(none.code).toBe(0);
    expect(none.stdout).toContain('no active share links');
  });

  it.each([
    [[], 'give the ID of the link to revoke, or --all'],
    [['0'.repeat(32), '--all'], 'not both'],
  ])('revoke %j is exit 2 and changes nothing', async (args, says) => {
    await initWorkspace();
    const minted = await mintJson();
    const run = await cmdop(['connect', 'share', 'revoke', ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(says);
    expect((await listJson()).shares.map((share) => [share.id, share.state])).toEqual([[minted.id, 'active']]);
  });

  it('needs an unlocked machine to mint or revoke when a password is set (exit 3)', async () => {
    await initWorkspace();
    const minted = await mintJson();
    const password = 'open sesame 42';
    expect((await cmdop(['password', 'set'], `${password}\n`)).code).toBe(0);
    const locked = await cmdop(['connect', 'share', HOST]);
    expect(locked.code).toBe(3);
    expect(locked.stderr).toContain('cmdop password unlock');
    expect((await cmdop(['connect', 'share', 'revoke', minted.id])).code).toBe(3);
    expect((await cmdop(['connect', 'share', 'revoke', '--all'])).code).toBe(3);
    // Listing changes nothing and stays open.
    expect((await listJson()).shares).toHaveLength(1);
    expect((await cmdop(['password', 'unlock'], `${password}\n`)).code).toBe(0);
    expect((await mintJson()).host).toBe(HOST);
    expect((await cmdop(['connect', 'share', 'revoke', minted.id])).code).toBe(0);
  });
});
