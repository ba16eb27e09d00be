import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquirePidFile, isAlive, runningPid } from '../../src/daemon/pid-file.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cmdop-pid-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the pid file', () => {
  it('a second daemon on the same home is refused, naming the running one', async () => {
    const file = join(dir, 'agent.pid');
    const release = await acquirePidFile(file);
    // This test process stands in for the running daemon; the second claims another pid.
    await expect(acquirePidFile(file, process.pid + 1)).rejects.toMatchObject({ code: 'config', message: expect.stringMatching(/already running \(pid \d+\)/) as unknown });
    await release();
    expect(await runningPid(file)).toBeUndefined();
  });

  it('a pid file left by a daemon that died is stale and taken over', async () => {
    const file = join(dir, 'agent.pid');
    const child = spawn(process.execPath, ['-e', '']);
    const dead = await new Promise<number>((resolveExit) => {
      child.on('exit', () => {
        resolveExit(child.pid ?? 0);
      });
    });
    writeFileSync(file, `${dead}\n`);
    expect(await runningPid(file)).toBeUndefined();
    const release = await acquirePidFile(file);
    expect(readFileSync(file, 'utf8').trim()).toBe(String(process.pid));
    await release();
  });

  it('garbage in the pid file is stale', async () => {
    const file = join(dir, 'agent.pid');
    writeFileSync(file, 'not a pid\n');
    const release = await acquirePidFile(file);
    await release();
  });

  it('an exited process that is not yet reaped counts as gone', async () => {
    // `sleep 0.3` exits soon, by when its parent has become `sleep 5`, which never reaps it: a
    // zombie. (Were it to exit before the exec, the shell itself would reap it.)
    const parent = spawn('sh', ['-c', 'sleep 0.3 & echo $!; exec sleep 5'], { stdio: ['ignore', 'pipe', 'ignore'] });
    try {
      const zombie = await new Promise<number>((resolvePid) => {
        parent.stdout.once('data', (chunk: Buffer) => {
          resolvePid(Number(chunk.toString().trim()));
        });
      });
      // Once `sleep 0.3` has exited (it may take longer on a loaded machine) ...
      const deadline = Date.now() + 10_000;
      while (isAlive(zombie) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      // ... signal 0 still reaches it, but it is not running.
      expect(() => process.kill(zombie, 0)).not.toThrow();
      expect(isAlive(zombie)).toBe(false);
      expect(isAlive(process.pid)).toBe(true);
    } finally {
      parent.kill('SIGKILL');
    }
  });
});
