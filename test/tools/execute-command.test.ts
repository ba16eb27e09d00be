import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import type { Approval } from '../../src/tools/approval.js';
import { executeCommand, type ExecuteCommandOptions } from '../../src/tools/execute-command.js';
import { createToolsFixture, waitUntilDead, type ToolsFixture } from './tools-fixture.js';

let fx: ToolsFixture;
/** Background processes a test started, killed afterwards should the test fail midway. */
const spawned: number[] = [];

beforeAll(async () => {
  fx = await createToolsFixture('exec');
});
afterEach(() => {
  for (const pid of spawned.splice(0)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
});
afterAll(() => {
  fx.cleanup();
});

function approve(command: string, cwd?: string): Approval {
  return fx.approve({ tool: 'execute_command', target: command, ...(cwd === undefined ? {} : { cwd }) });
}

function run(command: string, options: Omit<ExecuteCommandOptions, 'command'> = {}): ReturnType<typeof executeCommand> {
  return executeCommand(approve(command, options.cwd), { command, ...options });
}

/** The pids a command printed, one a line, remembered for cleanup. */
function pidsIn(stdout: string): number[] {
  const pids = stdout.trim().split('\n').map(Number);
  spawned.push(...pids.filter((pid) => Number.isSafeInteger(pid) && pid > 1));
  for (const pid of pids) expect(Number.isSafeInteger(pid) && pid > 1).toBe(true);
  return pids;
}

describe('executeCommand', () => {
  it.each([
    ['true', 0],
    ['exit 3', 3],
    ['false || exit 42', 42],
    ['exit 255', 255],
  ])('returns the exit code of %s', async (command, code) => {
    const result = await run(command);
    expect(result).toMatchObject({ exit_code: code, signal: null, timed_out: false, aborted: false });
  });

  it('captures stdout and stderr separately', async () => {
    const result = await run('echo out; echo err >&2; printf "two\\nlines"');
    expect(result.stdout).toBe('out\ntwo\nlines');
    expect(result.stderr).toBe('err\n');
    expect(result.truncated).toEqual({ stdout: false, stderr: false });
    expect(result.duration_ms).toBeGreaterThanOrEqual(0);
  });

  it('caps output, flags it, and keeps draining so the writer is never blocked', async () => {
    // 5 MB is far more than a pipe holds: had the reader stopped, `yes` would block until the timeout.
    const result = await run('yes | head -c 5000000; echo done >&2', { maxOutputBytes: 1000, timeoutMs: 10_000 });
    expect(result.stdout).toHaveLength(1000);
    expect(result.stdout.startsWith('y\ny\n')).toBe(true);
    expect(result.truncated).toEqual({ stdout: true, stderr: false });
    expect(result).toMatchObject({ exit_code: 0, timed_out: false, stderr: 'done\n' });
  });

  it('does not flag output exactly at the cap', async () => {
    const result = await run('printf 12345', { maxOutputBytes: 5 });
    expect(result.stdout).toBe('12345');
    expect(result.truncated.stdout).toBe(false);
  });

  it.each([
    ['a background grandchild', 'sleep 300 & echo $!; sleep 300'],
    ['a grandchild of a nested bash', "bash -c 'sleep 300 & echo $!; wait'"],
  ])('on timeout kills the whole process group, %s included', async (_what, command) => {
    const result = await run(command, { timeoutMs: 400 });
    const [grandchild] = pidsIn(result.stdout);
    expect(result).toMatchObject({ timed_out: true, aborted: false, exit_code: null, signal: 'SIGTERM' });
    expect(await waitUntilDead(grandchild!)).toBe(true);
  });

  it('kills with SIGKILL after the grace period when the group ignores SIGTERM', async () => {
    const result = await run('trap "" TERM; sleep 300 & echo $!; wait', { timeoutMs: 300, killGraceMs: 200 });
    const [grandchild] = pidsIn(result.stdout);
    expect(result).toMatchObject({ timed_out: true, signal: 'SIGKILL' });
    expect(await waitUntilDead(grandchild!)).toBe(true);
  });

  it('ends a call whose finished command left a background child holding the pipes, at the timeout', async () => {
    const result = await run('sleep 300 & echo $!', { timeoutMs: 400 });
    // bash itself exited 0 at once; the child kept stdout open until the group was killed.
    const [child] = pidsIn(result.stdout);
    expect(result).toMatchObject({ exit_code: 0, signal: null, timed_out: true });
    expect(await waitUntilDead(child!)).toBe(true);
  });

  it('is cancelled by its AbortSignal, killing the group', async () => {
    const controller = new AbortController();
    const pending = run('sleep 300 & echo $!; wait', { signal: controller.signal });
    setTimeout(() => {
      controller.abort();
    }, 300);
    const result = await pending;
    const [child] = pidsIn(result.stdout);
    expect(result).toMatchObject({ aborted: true, timed_out: false, signal: 'SIGTERM' });
    expect(result.duration_ms).toBeLessThan(5_000);
    expect(await waitUntilDead(child!)).toBe(true);
  });

  it('does not start when the signal is already aborted', async () => {
    const marker = join(fx.root, 'should-not-exist');
    const controller = new AbortController();
    controller.abort();
    await expect(run(`touch ${marker}`, { signal: controller.signal })).rejects.toMatchObject({ code: 'tool_failed' });
    expect(existsSync(marker)).toBe(false);
  });

  it("gives the command a minimal environment, never the daemon's", async () => {
    process.env['CMDOP_TEST_SECRET'] = 's3cret';
    try {
      const result = await run('env', { env: { GREETING: 'hello world' } });
      expect(result.stdout).not.toContain('s3cret');
      expect(result.stdout).not.toContain('CMDOP_TEST_SECRET');
      const env = new Map(result.stdout.trim().split('\n').map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]));
      expect(env.get('HOME')).toBe(fx.home);
      expect(env.get('TERM')).toBe('dumb');
      expect(env.get('SHELL')).toBe('/bin/bash');
      expect(env.get('GREETING')).toBe('hello world');
      expect(env.has('PATH')).toBe(true);
    } finally {
      delete process.env['CMDOP_TEST_SECRET'];
    }
  });

  it.each(['BASH_ENV', 'LD_PRELOAD', 'PATH', 'HOME', 'SHELLOPTS', 'BASH_FUNC_ls%%', '1BAD', 'A=B'])('refuses to set %s for the command', async (name) => {
    await expect(run('true', { env: { [name]: 'x' } })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('reads stdin from /dev/null', async () => {
    const result = await run('cat; readlink /proc/self/fd/0', { timeoutMs: 5_000 });
    expect(result).toMatchObject({ stdout: '/dev/null\n', timed_out: false, exit_code: 0 });
  });

  it('runs in the home by default and in the approved cwd when given', async () => {
    const work = join(fx.root, 'work');
    mkdirSync(work, { recursive: true });
    expect((await run('pwd')).stdout).toBe(`${fx.home}\n`);
    expect((await run('pwd', { cwd: work })).stdout).toBe(`${work}\n`);
  });

  it('reports a missing cwd as not found', async () => {
    const error = await run('pwd', { cwd: join(fx.root, 'no-such-dir') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CmdopError);
    expect(error).toMatchObject({ code: 'not_found' });
    expect((error as CmdopError).exitCode).toBe(4);
  });

  it('runs only the approved command, in the approved cwd', async () => {
    const approval = approve('echo approved');
    await expect(executeCommand(approval, { command: 'echo other' })).rejects.toMatchObject({ code: 'denied' });
    await expect(executeCommand(approval, { command: 'echo approved', cwd: fx.root })).rejects.toMatchObject({ code: 'denied' });
    expect((await executeCommand(approval, { command: 'echo approved' })).stdout).toBe('approved\n');
  });

  it('refuses an approval it did not see minted', async () => {
    const genuine = approve('true');
    const forged: Approval = { ...genuine };
    await expect(executeCommand(forged, { command: 'true' })).rejects.toMatchObject({ code: 'denied' });
  });

  it.each([
    [{ timeoutMs: 600_001 }],
    [{ timeoutMs: 0 }],
    [{ timeoutMs: 1.5 }],
    [{ maxOutputBytes: 0 }],
  ])('refuses out-of-range limits %j', async (limits) => {
    await expect(run('true', limits)).rejects.toMatchObject({ code: 'invalid_input' });
  });
});
