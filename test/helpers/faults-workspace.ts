/**
 * A workspace for the fault tests: like makeWorkspace, but a host's `logs/` may sit on a tiny
 * tmpfs mounted before its daemon starts, so a test can fill it and watch audit appends fail.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeHost, mustRun, type TestHost } from './mesh-hosts.js';

export interface FaultHostSpec {
  readonly name: string;
  readonly ip: string;
  /** Mount a tmpfs of this many KiB on the host's `logs/` before its daemon starts. */
  readonly logsTmpfsKiB?: number;
}

export interface FaultWorkspace {
  readonly hosts: TestHost[];
  /** Why a tmpfs could not be mounted, per host name; absent when it was. */
  readonly mountErrors: ReadonlyMap<string, string>;
  cleanup(): Promise<void>;
}

/**
 * The first host inits the workspace, each next one joins with a fresh token; all start.
 * A failed tmpfs mount does not stop the workspace: it is recorded in `mountErrors` so the test
 * that needs it fails with the reason, while the others still run.
 */
export async function makeFaultWorkspace(specs: readonly FaultHostSpec[]): Promise<FaultWorkspace> {
  const root = mkdtempSync(join(tmpdir(), 'cmdop-faults-'));
  const hosts = specs.map((spec) => makeHost(spec.name, spec.ip, root));
  const mounts: string[] = [];
  const mountErrors = new Map<string, string>();
  const cleanup = async (): Promise<void> => {
    await Promise.all(hosts.map((h) => h.stop().catch(() => undefined)));
    for (const dir of mounts.splice(0)) {
      try {
        execFileSync('umount', ['-l', dir], { stdio: 'pipe' });
      } catch {
        // Already gone; the rm below says if it is not.
      }
    }
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const [i, host] of hosts.entries()) {
      const spec = specs[i] as FaultHostSpec;
      await mustRun(host, ['config', 'set', 'agent.listen', host.address]);
      await mustRun(host, ['config', 'set', 'permissions.ask_timeout', '5']);
      await mustRun(host, ['config', 'set', 'agent.announce_interval', '1']);
      if (i === 0) {
        await mustRun(host, ['workspace', 'init', '--name', 'faults', '--host-name', host.name]);
      } else {
        const ca = hosts[0] as TestHost;
        const invite = await ca.json<{ token: string }>(['workspace', 'invite', '--ttl', '10m']);
        await mustRun(host, ['join', invite.body.token, '--server', ca.address, '--name', host.name]);
      }
      if (spec.logsTmpfsKiB !== undefined) {
        const logs = join(host.home, 'logs');
        try {
          mountTmpfs(logs, spec.logsTmpfsKiB);
          mounts.push(logs);
        } catch (error) {
          mountErrors.set(host.name, error instanceof Error ? error.message : String(error));
        }
      }
      await host.start();
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { hosts, mountErrors, cleanup };
}

/** Mounts a tmpfs of `sizeKiB` on `dir` (0700, as the daemon wants its logs); throws saying why it cannot. */
function mountTmpfs(dir: string, sizeKiB: number): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (readdirSync(dir).length > 0) throw new Error(`${dir} is not empty; the tmpfs would hide its files`);
  if (process.getuid?.() !== 0) throw new Error(`mounting a tmpfs needs root; this test runs as uid ${String(process.getuid?.())}`);
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${String(sizeKiB)}k,mode=0700`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (error) {
    const stderr = (error as { stderr?: Buffer }).stderr?.toString().trim() ?? '';
    throw new Error(`mount -t tmpfs on ${dir} failed: ${stderr === '' ? String(error) : stderr}`);
  }
}

/**
 * Fills the file system holding `dir` with a file of its own until a write fails with ENOSPC,
 * down to the last byte, so the next allocation anywhere on it fails. Returns the filler's path.
 */
export function fillFileSystem(dir: string): string {
  const filler = join(dir, 'filler');
  const fd = openSync(filler, 'w', 0o600);
  try {
    for (let chunk = 64 * 1024; chunk >= 1; ) {
      try {
        const written = writeSync(fd, Buffer.alloc(chunk, 0x78));
        if (written < chunk) chunk = Math.floor(chunk / 2);
      } catch (error) {
        if ((error as { code?: string }).code !== 'ENOSPC') throw error;
        chunk = Math.floor(chunk / 2);
      }
    }
  } finally {
    closeSync(fd);
  }
  return filler;
}

/** The pids of `pid`'s direct children (Linux /proc). */
export function childPids(pid: number): number[] {
  const pids: number[] = [];
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${String(pid)}/task`);
  } catch {
    return pids;
  }
  for (const task of tasks) {
    try {
      const text = readFileSync(`/proc/${String(pid)}/task/${task}/children`, 'utf8').trim();
      if (text !== '') pids.push(...text.split(/\s+/).map(Number));
    } catch {
      // The task ended meanwhile.
    }
  }
  return pids;
}
