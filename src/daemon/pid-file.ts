/**
 * The daemon's pid file, `run/agent.pid`: created exclusively, so two daemons never share one
 * `CMDOP_HOME`. A pid file left by a daemon that died is stale and taken over; one whose
 * process still runs means the daemon is already running.
 */
import { readFileSync } from 'node:fs';
import { open, readFile, unlink } from 'node:fs/promises';
import { CmdopError, systemErrorCode } from '../errors.js';

/** The pid recorded in `file` if that process is alive; undefined otherwise. */
export async function runningPid(file: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
  const pid = Number.parseInt(text.trim(), 10);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return isAlive(pid) ? pid : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    // EPERM: it exists but belongs to someone else; still alive.
    return systemErrorCode(error) === 'EPERM';
  }
  return !isZombie(pid);
}

/**
 * A daemon that has exited but not yet been reaped (its parent, often init in a container,
 * takes its time) still answers signal 0; on Linux its state in /proc says it is gone.
 */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The state follows the command name, which is in parentheses and may itself hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/** Writes this process's pid to `file`, taking over a stale file; refuses if a live daemon holds it. */
export async function acquirePidFile(file: string, pid = process.pid): Promise<() => Promise<void>> {
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      try {
        await handle.writeFile(`${pid}\n`);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return async () => {
        // Only remove the file while it still names us.
        const current = await readFile(file, 'utf8').catch(() => '');
        if (current.trim() === String(pid)) await unlink(file).catch(() => undefined);
      };
    } catch (error) {
      if (systemErrorCode(error) !== 'EEXIST') throw error;
    }
    const holder = await runningPid(file);
    if (holder !== undefined && holder !== pid) {
      throw new CmdopError('config', `the cmdop daemon is already running (pid ${holder})`, {
        hint: 'Use `cmdop agent status` to see it, or `cmdop agent restart` to start it afresh.',
        details: { pid: holder, pid_file: file },
      });
    }
    // Stale: its process is gone.
    await unlink(file).catch(() => undefined);
  }
  throw new CmdopError('internal', `could not take the pid file ${file}; another daemon may be starting at the same moment`);
}
