import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readPasswords } from '../../src/cli/password-guard.js';
import { runCmdop, tempHome, type CmdopRun } from '../helpers/run-cmdop.js';

const PASSWORD = 'open sesame 42';
const NEW_PASSWORD = 'close sesame 43';
const WRONG = 'not the password';

let home: string;
let cleanup: () => void;
let outputs: string[];
beforeEach(() => {
  ({ home, cleanup } = tempHome());
  outputs = [];
});
afterEach(() => {
  // Whatever happened, no password ever reached the terminal or the audit log.
  const auditLog = join(home, 'logs', 'audit.log');
  const everything = [...outputs, existsSync(auditLog) ? readFileSync(auditLog, 'utf8') : ''].join('\n');
  for (const secret of [PASSWORD, NEW_PASSWORD, WRONG]) expect(everything).not.toContain(secret);
  cleanup();
});

async function cmdop(args: readonly string[], stdin?: string, env?: Readonly<Record<string, string>>): Promise<CmdopRun> {
  const run = await runCmdop(args, { home, ...(stdin === undefined ? {} : { stdin }), ...(env === undefined ? {} : { env }) });
  outputs.push(run.stdout, run.stderr);
  return run;
}

const json = (run: CmdopRun): Record<string, unknown> => JSON.parse(run.stdout) as Record<string, unknown>;

describe('cmdop password', () => {
  it('set, status, unlock, lock: the happy path', async () => {
    expect(json(await cmdop(['password', 'status', '--json']))).toMatchObject({ set: false, unlocked: false });

    const set = await cmdop(['password', 'set', '--json'], `${PASSWORD}\n`);
    expect(set.code).toBe(0);
    expect(json(set)).toMatchObject({ set: true, changed: false });
    expect(statSync(join(home, 'password.json')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(home, 'password.json'), 'utf8')).toContain('"algorithm": "scrypt"');

    const locked = await cmdop(['password', 'status']);
    expect(locked.code).toBe(0);
    expect(locked.stdout).toMatch(/state\s+locked/);

    const unlocked = await cmdop(['password', 'unlock', '--ttl', '10m', '--json'], `${PASSWORD}\n`);
    expect(unlocked.code).toBe(0);
    const until = Date.parse(json(unlocked)['unlocked_until'] as string);
    expect(until - Date.now()).toBeGreaterThan(9 * 60_000);
    expect(until - Date.now()).toBeLessThanOrEqual(10 * 60_000);
    expect(json(await cmdop(['password', 'status', '--json']))).toMatchObject({ set: true, unlocked: true, failures: 0, retry_at: null });

    const lock = await cmdop(['password', 'lock']);
    expect(lock.code).toBe(0);
    expect(json(await cmdop(['password', 'status', '--json']))).toMatchObject({ set: true, unlocked: false });

    const audit = readFileSync(join(home, 'logs', 'audit.log'), 'utf8').trim().split('\n');
    expect(audit.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([expect.objectContaining({ tool: 'password_unlock', decision: 'allow', source: 'local', target: '' })]);
  });

  it('a wrong password exits 3; any attempt during the delay exits 8; after it, the right one unlocks', async () => {
    expect((await cmdop(['password', 'set'], `${PASSWORD}\n`)).code).toBe(0);

    // A first delay of 5 s (it can only be lengthened): the next process surely starts within it, even on a loaded machine.
    const wrong = await cmdop(['password', 'unlock'], `${WRONG}\n`, { CMDOP_PASSWORD_DELAY_MS: '5000' });
    expect(wrong.code).toBe(3);
    expect(wrong.stderr).toContain('wrong password');

    // A separate process sees the delay the first one recorded, and refuses even the right password.
    const early = await cmdop(['password', 'unlock', '--json'], `${PASSWORD}\n`, { CMDOP_PASSWORD_DELAY_MS: '5000' });
    expect(early.code).toBe(8);
    expect(json(early)).toMatchObject({ error: { code: 'rate_limited', exit_code: 8 } });
    const retryAt = Date.parse((json(early)['error'] as { details: { retry_at: string } }).details.retry_at);
    expect(json(await cmdop(['password', 'status', '--json']))).toMatchObject({ failures: 1 });

    await new Promise((resolve) => setTimeout(resolve, Math.max(0, retryAt - Date.now()) + 50));
    const ok = await cmdop(['password', 'unlock'], `${PASSWORD}\n`, { CMDOP_PASSWORD_DELAY_MS: '5000' });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toContain('unlocked until');

    const audit = readFileSync(join(home, 'logs', 'audit.log'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(audit.map((l) => [l['tool'], l['decision']])).toEqual([
      ['password_unlock', 'deny'],
      ['password_unlock', 'deny'],
      ['password_unlock', 'allow'],
    ]);
  });

  it('changing and clearing need the current password', async () => {
    expect((await cmdop(['password', 'set'], `${PASSWORD}\n`)).code).toBe(0);
    // One line is not enough once a password is set: current, then new.
    expect((await cmdop(['password', 'set'], `${NEW_PASSWORD}\n`)).code).toBe(2);
    expect((await cmdop(['password', 'set'], `${WRONG}\n${NEW_PASSWORD}\n`)).code).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const changed = await cmdop(['password', 'set', '--json'], `${PASSWORD}\n${NEW_PASSWORD}\n`);
    expect(changed.code).toBe(0);
    expect(json(changed)).toMatchObject({ changed: true });

    expect((await cmdop(['password', 'clear'], `${PASSWORD}\n`)).code).toBe(3);
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    expect((await cmdop(['password', 'clear'], `${NEW_PASSWORD}\n`)).code).toBe(0);
    expect(json(await cmdop(['password', 'status', '--json']))).toMatchObject({ set: false });
  });

  it('never takes the password as an argument, and does not echo one given there', async () => {
    expect((await cmdop(['password', 'set'], `${PASSWORD}\n`)).code).toBe(0);
    for (const args of [['password', 'unlock', PASSWORD], ['password', 'unlock', `--password=${PASSWORD}`], ['password', 'set', '--', PASSWORD], ['password', 'clear', PASSWORD]]) {
      const run = await cmdop(args);
      expect(run.code).toBe(2);
      expect(run.stderr).toContain('never from the command line');
    }
  });

  it('refuses a too-short new password and an empty stdin', async () => {
    const short = await cmdop(['password', 'set'], 'short\n');
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('too short');
    expect(existsSync(join(home, 'password.json'))).toBe(false);
    expect((await cmdop(['password', 'set'], `${PASSWORD}\n`)).code).toBe(0);
    expect((await cmdop(['password', 'unlock'], '')).code).toBe(2);
  });
});

describe('a locked machine', () => {
  it('may not change rules or settings, or call hosts, until unlocked', async () => {
    expect((await cmdop(['password', 'set'], `${PASSWORD}\n`)).code).toBe(0);
    const allow = await cmdop(['permissions', 'allow', 'execute_command(git status)']);
    expect(allow.code).toBe(3);
    expect(allow.stderr).toMatch(/locked/);
    expect(existsSync(join(home, 'permissions.yaml'))).toBe(false);
    expect((await cmdop(['permissions', 'mode', 'bypass'])).code).toBe(3);
    expect((await cmdop(['config', 'set', 'permissions.enabled', 'false'])).code).toBe(3);
    const exec = await cmdop(['connect', 'exec', 'somehost', '--json', '--', 'true']);
    expect(exec.code).toBe(3);
    expect(json(exec)).toMatchObject({ ran: false });
    // Nor let a host in, evict one, revoke a key, or move where a host name is reached.
    const membership = await Promise.all([
      cmdop(['workspace', 'invite']),
      cmdop(['workspace', 'revoke', 'build-2']),
      cmdop(['workspace', 'keys', 'revoke', 'ci']),
      cmdop(['peers', 'add', 'build-2', '--address', '10.0.0.7:8470']),
      cmdop(['peers', 'remove', 'build-2']),
    ]);
    for (const run of membership) {
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/locked.*cmdop password unlock/);
    }
    // Reading stays open.
    expect((await cmdop(['permissions', 'list'])).code).toBe(0);
    expect((await cmdop(['password', 'unlock'], `${PASSWORD}\n`)).code).toBe(0);
    expect((await cmdop(['permissions', 'allow', 'execute_command(git status)'])).code).toBe(0);
  }, 60_000);
});

describe('readPasswords', () => {
  it('on a terminal: shows each prompt, echoes nothing, honours backspace, Ctrl-U and restores the mode', async () => {
    const input = Object.assign(new PassThrough(), { isTTY: true, modes: [] as boolean[] });
    const setRawMode = (raw: boolean): typeof input => {
      input.modes.push(raw);
      return input;
    };
    const output = new PassThrough();
    let shown = '';
    output.setEncoding('utf8').on('data', (chunk: string) => (shown += chunk));
    const reading = readPasswords(['Current: ', 'New: '], { input: Object.assign(input, { setRawMode }), output });
    const type = async (text: string): Promise<void> => {
      input.write(text);
      await new Promise((resolve) => setImmediate(resolve));
    };
    await type('wrongX\u007f\u0015secret1\r');
    // An arrow key arrives as one chunk and is dropped whole.
    for (const chunk of ['p\u00e4', '\u001b[A', 'ss\n']) await type(chunk);
    expect(await reading).toEqual(['secret1', 'p\u00e4ss']);
    expect(shown).toBe('Current: \nNew: \n');
    expect(input.modes).toEqual([true, false, true, false]);
  });

  it('from a pipe: the first lines, without line endings', async () => {
    const input = new PassThrough();
    input.end('first one\r\nsecond one\nthird\n');
    expect(await readPasswords(['a', 'b'], { input })).toEqual(['first one', 'second one']);
  });

  it('from a pipe: fewer lines than prompts is bad input', async () => {
    const input = new PassThrough();
    input.end('only one');
    await expect(readPasswords(['a', 'b'], { input })).rejects.toMatchObject({ code: 'invalid_input' });
  });
});
