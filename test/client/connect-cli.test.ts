/**
 * `cmdop connect exec|read|write|ls`, the built binary against a FAKE daemon (see
 * fake-daemon.ts for why it is fake): exit codes per DESIGN.md §7 and the `--json` shapes.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCmdop, type CmdopRun } from '../helpers/run-cmdop.js';
import { BINARY, DENY_RM, startFakeDaemon, type FakeDaemon } from './fake-daemon.js';

let daemon: FakeDaemon;
let scratch: string;
beforeAll(async () => {
  daemon = await startFakeDaemon();
  scratch = mkdtempSync(join(tmpdir(), 'cmdop-connect-'));
});
afterAll(async () => {
  await daemon.close();
  rmSync(scratch, { recursive: true, force: true });
});

const cmdop = (args: readonly string[], stdin?: string): Promise<CmdopRun> => runCmdop(args, { home: daemon.home, ...(stdin === undefined ? {} : { stdin }) });
const noStack = (run: CmdopRun): void => {
  expect(run.stderr).not.toMatch(/\bat .*\.js:\d+/);
};

interface ExecJson {
  hostname: string | null;
  command: string | null;
  ran: boolean;
  exit_code: number | null;
  signal: string | null;
  stdout: string;
  stderr: string;
  duration_ms: number | null;
  truncated: { stdout: boolean; stderr: boolean };
  decision: { decision: string; reason: string } | null;
  error?: { code: string; exit_code: number; message: string; hint: string | null };
}

describe('cmdop connect exec', () => {
  it('passes the words after -- as one command line and prints the output as it is', async () => {
    const run = await cmdop(['connect', 'exec', 'vps-audi', '--timeout', '12', '--cwd', '/srv', '--', 'echo', 'a', 'b', 'a', '--json-like', '-x']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('a b a --json-like -x\n');
    expect(daemon.seen.at(-1)?.body).toEqual({ host: 'vps-audi', tool: 'execute_command', request: { command: 'echo a b a --json-like -x', cwd: '/srv', timeout_ms: 12_000 } });
  });

  it('takes one quoted argument as the command line', async () => {
    const run = await cmdop(['connect', 'exec', 'vps-audi', 'echo hello world']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('hello world\n');
  });

  it('mirrors the remote exit code, and 128+N for a signal', async () => {
    const exited = await cmdop(['connect', 'exec', 'vps-audi', '--', 'exit', '42']);
    expect(exited.code).toBe(42);
    expect(exited.stderr).toBe('bye\n');
    const killed = await cmdop(['connect', 'exec', 'vps-audi', 'kill']);
    expect(killed.code).toBe(137);
    expect(killed.stderr).toContain('SIGKILL');
  });

  it('notes truncated output on stderr', async () => {
    const run = await cmdop(['connect', 'exec', 'vps-audi', 'flood']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('y'.repeat(100));
    expect(run.stderr).toContain('[truncated] stdout');
  });

  it('--json gives the documented shape, with ran: true and the remote exit code', async () => {
    const run = await cmdop(['connect', 'exec', 'vps-audi', '--json', '--', 'exit', '3']);
    expect(run.code).toBe(3);
    const out = JSON.parse(run.stdout) as ExecJson;
    expect(out).toMatchObject({ hostname: 'vps-audi', command: 'exit 3', ran: true, exit_code: 3, stdout: '', stderr: 'bye\n', duration_ms: 12, truncated: { stdout: false, stderr: false }, decision: { decision: 'allow' } });
  });

  it('a denial exits 3 with the host and reason on stderr', async () => {
    const run = await cmdop(['connect', 'exec', 'vps-audi', '--', 'rm', '-rf', '/']);
    expect(run.code).toBe(3);
    expect(run.stdout).toBe('');
    expect(run.stderr).toContain(`denied by vps-audi: ${DENY_RM.reason}`);
    noStack(run);
  });

  it('a denial with --json keeps the exec shape: ran false, the decision and the error', async () => {
    const run = await cmdop(['connect', 'exec', 'vps-audi', '--json', '--', 'rm -rf /']);
    expect(run.code).toBe(3);
    const out = JSON.parse(run.stdout) as ExecJson;
    expect(out).toMatchObject({ hostname: 'vps-audi', command: 'rm -rf /', ran: false, exit_code: null, decision: DENY_RM, error: { code: 'denied', exit_code: 3 } });
    expect(out.error?.message).toBe(`denied by vps-audi: ${DENY_RM.reason}`);
  });

  it('an unknown host exits 4', async () => {
    const run = await cmdop(['connect', 'exec', 'nosuch', '--', 'uptime']);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('unknown host "nosuch"');
    const json = JSON.parse((await cmdop(['connect', 'exec', 'nosuch', '--json', '--', 'uptime'])).stdout) as ExecJson;
    expect(json).toMatchObject({ hostname: 'nosuch', ran: false, decision: null, error: { code: 'not_found', exit_code: 4 } });
  });

  it('a daemon that is down exits 7 and says how to start it', async () => {
    const home = mkdtempSync(join(tmpdir(), 'cmdop-connect-none-'));
    try {
      const run = await runCmdop(['connect', 'exec', 'vps-audi', '--', 'uptime'], { home });
      expect(run.code).toBe(7);
      expect(run.stderr).toContain('the cmdop daemon is not running (no socket at');
      expect(run.stderr).toContain('cmdop agent start');
      noStack(run);
      const json = JSON.parse((await runCmdop(['connect', 'exec', 'vps-audi', '--json', '--', 'uptime'], { home })).stdout) as ExecJson;
      expect(json).toMatchObject({ ran: false, error: { code: 'unavailable', exit_code: 7 } });
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('a daemon dying mid-reply exits 7', async () => {
    const run = await cmdop(['connect', 'exec', 'vps-audi', 'crash']);
    expect(run.code).toBe(7);
    expect(run.stderr).toContain('stopped in the middle of its reply');
  });

  it.each([
    [['connect', 'exec', 'vps-audi'], 'no command to run'],
    [['connect', 'exec', 'vps-audi', '--'], 'no command to run'],
    [['connect', 'exec', 'vps-audi', 'ls', '/srv'], 'goes after --'],
    [['connect', 'exec', 'vps-audi', '--timeout', '601', '--', 'ls'], '601'],
    [['connect', 'exec', 'vps-audi', '--timeout', '0', '--', 'ls'], '0'],
  ])('bad input %j exits 2', async (args, message) => {
    const run = await cmdop(args);
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    noStack(run);
  });

  it('--debug after -- belongs to the remote command', async () => {
    const run = await cmdop(['connect', 'exec', 'nosuch', '--', 'foo', '--debug']);
    expect(run.code).toBe(4);
    noStack(run);
  });

  it('--help shows examples', async () => {
    const run = await cmdop(['connect', 'exec', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('connect exec vps-audi -- uptime');
  });
});

describe('cmdop connect read / write / ls', () => {
  it('read prints raw bytes, or writes them to --output', async () => {
    const run = await cmdop(['connect', 'read', 'vps-audi', '/etc/hostname']);
    expect(run.code).toBe(0);
    expect(run.stdout).toBe('vps-audi\n');
    const file = join(scratch, 'blob.bin');
    const saved = await cmdop(['connect', 'read', 'vps-audi', '/srv/blob.bin', '--output', file]);
    expect(saved.code).toBe(0);
    expect(Buffer.compare(readFileSync(file), BINARY)).toBe(0);
  });

  it('read --json gives utf8 text when it is valid UTF-8, else base64', async () => {
    const text = JSON.parse((await cmdop(['connect', 'read', 'vps-audi', '/etc/hostname', '--json'])).stdout) as Record<string, unknown>;
    expect(text).toMatchObject({ hostname: 'vps-audi', path: '/etc/hostname', size: 9, bytes: 9, encoding: 'utf8', content: 'vps-audi\n', decision: { decision: 'allow' } });
    const binary = JSON.parse((await cmdop(['connect', 'read', 'vps-audi', '/srv/blob.bin', '--json', '--offset', '1', '--length', '100'])).stdout) as Record<string, unknown>;
    expect(binary).toMatchObject({ encoding: 'base64', offset: 1, bytes: 100, content: BINARY.subarray(1, 101).toString('base64') });
  });

  it('read of a missing file exits 4', async () => {
    const run = await cmdop(['connect', 'read', 'vps-audi', '/nope']);
    expect(run.code).toBe(4);
    expect(run.stderr).toContain('/nope does not exist');
  });

  it('write sends stdin or --from, with --mode, and reports created/replaced', async () => {
    const piped = await cmdop(['connect', 'write', 'vps-audi', '/tmp/a.txt', '--mode', '600'], 'hello\n');
    expect(piped.code).toBe(0);
    expect(piped.stdout).toContain('created vps-audi:/tmp/a.txt (6 bytes)');
    expect(daemon.seen.at(-1)?.body).toMatchObject({ tool: 'write_file', request: { path: '/tmp/a.txt', mode: 0o600, content_base64: Buffer.from('hello\n').toString('base64') } });
    const local = join(scratch, 'upload.bin');
    writeFileSync(local, BINARY);
    const json = await cmdop(['connect', 'write', 'vps-audi', '/tmp/a.txt', '--from', local, '--json']);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ hostname: 'vps-audi', path: '/tmp/a.txt', bytes: BINARY.length, created: false });
    const back = await cmdop(['connect', 'read', 'vps-audi', '/tmp/a.txt', '--output', join(scratch, 'back.bin')]);
    expect(back.code).toBe(0);
    expect(Buffer.compare(readFileSync(join(scratch, 'back.bin')), BINARY)).toBe(0);
  });

  it.each([
    [['--mode', '999'], 'not an octal file mode'],
    [['--from', '/definitely/not/here'], 'cannot read /definitely/not/here'],
  ])('write with bad input %j fails before sending anything', async (flags, message) => {
    const before = daemon.seen.length;
    const run = await cmdop(['connect', 'write', 'vps-audi', '/tmp/b.txt', ...flags], '');
    expect([2, 4]).toContain(run.code);
    expect(run.stderr).toContain(message);
    expect(daemon.seen.length).toBe(before);
  });

  it('ls prints a table with control characters escaped, and JSON with --json', async () => {
    const run = await cmdop(['connect', 'ls', 'vps-audi', '/srv']);
    expect(run.code).toBe(0);
    const lines = run.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^TYPE\s+SIZE\s+NAME$/);
    expect(lines[1]).toMatch(/^dir\s+app\/$/);
    expect(lines[2]).toMatch(/^file\s+512\s+blob\.bin$/);
    expect(lines[3]).toContain('evil\\x1b[2Jname');
    expect(run.stdout).not.toContain('\u001b');
    const json = JSON.parse((await cmdop(['connect', 'ls', 'vps-audi', '/srv', '--json'])).stdout) as { entries: unknown[]; hostname: string };
    expect(json.hostname).toBe('vps-audi');
    expect(json.entries).toHaveLength(3);
  });

  it('ls of an unknown host exits 4, with --json the error object', async () => {
    const run = await cmdop(['connect', 'ls', 'nosuch', '/', '--json']);
    expect(run.code).toBe(4);
    expect(JSON.parse(run.stdout)).toMatchObject({ error: { code: 'not_found', exit_code: 4 } });
  });
});
