/**
 * Starting and stopping this host's daemon from the CLI. `start` runs the same binary with
 * `agent start --foreground` in a new session, detached, and waits until the daemon answers on
 * its socket; `stop` asks it over the socket and waits for its process to end.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { localRequest } from '../client/local-client.js';
import { ensureCmdopHome, ensurePrivateDir, logsDir, runDir } from '../config/cmdop-home.js';
import { CmdopError, type ErrorCode } from '../errors.js';
import { agentLogPath, pidPath } from '../daemon/paths.js';
import { isAlive, runningPid } from '../daemon/pid-file.js';
import { LOCAL_ROUTES, type StatusReply } from '../transport/local-api.js';

const START_TIMEOUT_MS = 30_000;
/** Node flags the background daemon runs with; for `--foreground`, pass them to node yourself. */
export const DAEMON_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
const STOP_TIMEOUT_MS = 20_000;

export async function daemonStatus(home: string, timeoutMs = 5_000): Promise<StatusReply> {
  return localRequest<StatusReply>({ home, timeoutMs }, LOCAL_ROUTES.status);
}

/** Starts the daemon in the background; resolves with its status once it answers. */
export async function startInBackground(home: string, progress: (text: string) => void): Promise<{ status: StatusReply; already_running: boolean }> {
  const pid = await runningPid(pidPath(home));
  if (pid !== undefined) {
    const status = await daemonStatus(home).catch(() => undefined);
    if (status !== undefined) return { status, already_running: true };
  }
  await ensureCmdopHome(home);
  await ensurePrivateDir(runDir(home));
  await ensurePrivateDir(logsDir(home));
  const bin = fileURLToPath(new URL('../../../bin/run.js', import.meta.url));
  // A small young generation keeps the daemon's resident memory low under load, at little cost
  // in throughput (measured in `npm run bench`).
  const child = spawn(process.execPath, [...DAEMON_NODE_FLAGS, bin, 'agent', 'start', '--foreground', '--quiet'], {
    detached: true,
    stdio: 'ignore',
    env: { ...process.env, CMDOP_HOME: home },
  });
  let exited: number | null | undefined;
  child.once('exit', (code) => {
    exited = code;
  });
  child.unref();
  const deadline = Date.now() + START_TIMEOUT_MS;
  let shown = false;
  const startedAt = Date.now();
  for (;;) {
    if (exited !== undefined) {
      throw await startFailure(home, exited);
    }
    try {
      const status = await daemonStatus(home, 2_000);
      if (status.pid === child.pid) return { status, already_running: false };
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline) {
      throw new CmdopError('unavailable', `the daemon did not answer within ${START_TIMEOUT_MS / 1000} s of starting`, { hint: `See ${agentLogPath(home)}.` });
    }
    if (!shown && Date.now() - startedAt > 1_000) {
      progress('starting the cmdop daemon…');
      shown = true;
    }
    await sleep(100);
  }
}

async function startFailure(home: string, code: number | null): Promise<CmdopError> {
  const line = await lastError(home);
  const errorCode: ErrorCode = code === 6 ? 'config' : code === 2 ? 'invalid_input' : code === 7 ? 'unavailable' : 'internal';
  return new CmdopError(errorCode, `the daemon stopped while starting${line === undefined ? '' : `: ${line}`}`, { hint: `See ${agentLogPath(home)}, or run \`cmdop agent start --foreground\` to watch it start.` });
}

async function lastError(home: string): Promise<string | undefined> {
  const text = await readFile(agentLogPath(home), 'utf8').catch(() => '');
  const lines = text.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      const entry = JSON.parse(line) as { level?: string; msg?: string; error?: { message?: string } };
      if (entry.level === 'error') return entry.error?.message ?? entry.msg;
    } catch {
      // A torn line.
    }
  }
  return undefined;
}

/** Stops the daemon and waits for its process to end; `was_running` false when there was none. */
export async function stopDaemon(home: string, progress: (text: string) => void): Promise<{ was_running: boolean; pid?: number }> {
  const pid = await runningPid(pidPath(home));
  if (pid === undefined) return { was_running: false };
  try {
    await localRequest({ home, timeoutMs: 5_000 }, LOCAL_ROUTES.shutdown);
  } catch {
    // The socket is gone or stuck: the signal does the same, but only to a cmdop daemon (a
    // stale pid file may name a process that reused the number).
    if (!isCmdopDaemon(pid)) return { was_running: false };
    try {
      process.kill(pid, 'SIGTERM');
    } catch {
      return { was_running: false };
    }
  }
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  const startedAt = Date.now();
  let shown = false;
  while (isAlive(pid)) {
    if (Date.now() > deadline) {
      throw new CmdopError('internal', `the daemon (pid ${pid}) did not stop within ${STOP_TIMEOUT_MS / 1000} s`, { hint: `Stop it by hand: kill ${pid}` });
    }
    if (!shown && Date.now() - startedAt > 1_000) {
      progress('waiting for calls in flight to finish…');
      shown = true;
    }
    await sleep(100);
  }
  return { was_running: true, pid };
}

/** Whether `pid` runs `cmdop agent start` (Linux /proc; elsewhere assumed so). */
function isCmdopDaemon(pid: number): boolean {
  let cmdline: string;
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return process.platform !== 'linux';
  }
  const args = cmdline.split('\0');
  return args.includes('agent') && args.includes('start') && args.includes('--foreground');
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolveSleep) => setTimeout(resolveSleep, ms));
}
