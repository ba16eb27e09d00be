/**
 * The execute_command tool: runs the approved command line with `bash -c` in its own process
 * group, with a minimal environment, stdin from /dev/null, capped output and a timeout that
 * kills the whole group, grandchildren included.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { userInfo } from 'node:os';
import type { Readable } from 'node:stream';
import { CmdopError } from '../errors.js';
import { approvedCwd, requireApproval, type Approval } from './approval.js';
import { fsError } from './fs-error.js';
import { boundedInteger, MIB } from './tool-input.js';

/** Run time allowed when the caller gives none. */
export const DEFAULT_TIMEOUT_MS = 30_000;
/** The longest run time a caller may ask for (DESIGN.md §3: every tool bounds its run time). */
export const MAX_TIMEOUT_MS = 600_000;
/** Bytes kept of stdout, and separately of stderr, when the caller gives no cap. */
export const DEFAULT_MAX_OUTPUT_BYTES = MIB;
/** The largest output cap a caller may ask for, per stream. */
export const MAX_OUTPUT_BYTES = 64 * MIB;
/** Time between SIGTERM and SIGKILL to the process group when the default is not overridden. */
export const DEFAULT_KILL_GRACE_MS = 2_000;

/** How long, after SIGKILL, the pipes may stay open before the call ends anyway. */
const DRAIN_AFTER_KILL_MS = 1_000;
const FALLBACK_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ExecuteCommandOptions {
  /** The command line exactly as approved. */
  readonly command: string;
  /** Working directory exactly as in the approved request; default the receiving user's home. */
  readonly cwd?: string;
  /** Default 30 000, at most 600 000. */
  readonly timeoutMs?: number;
  /** Cap on each of stdout and stderr; default 1 MiB. Output beyond it is read and dropped. */
  readonly maxOutputBytes?: number;
  /** Aborting kills the process group, as a timeout does. */
  readonly signal?: AbortSignal;
  /** Extra environment entries; names that change how bash or the loader runs are refused. */
  readonly env?: Readonly<Record<string, string>>;
  /** Time between SIGTERM and SIGKILL; default 2 000, at most 10 000. */
  readonly killGraceMs?: number;
}

export interface ExecuteCommandResult {
  /** bash's exit code; null when it was ended by a signal. */
  readonly exit_code: number | null;
  /** The signal that ended bash, such as SIGTERM; null when it exited. */
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
  /** True for a stream that produced more than the cap. */
  readonly truncated: { readonly stdout: boolean; readonly stderr: boolean };
  readonly timed_out: boolean;
  /** True when the caller's AbortSignal ended the run. */
  readonly aborted: boolean;
  readonly duration_ms: number;
}

/**
 * Variables that change what any command line means to bash or the dynamic loader, whatever
 * program it runs, or that the gate's reading of the line depends on (`~` is the receiving
 * home; programs come from PATH). The gate never sees the environment, so these are refused.
 */
const RESERVED_NAMES = new Set([
  'PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'BASH_ENV', 'ENV', 'SHELLOPTS', 'BASHOPTS', 'IFS', 'PS4', 'CDPATH',
  'GLOBIGNORE', 'EXECIGNORE', 'PROMPT_COMMAND', 'BASH_XTRACEFD', 'BASH_COMPAT', 'INPUTRC', 'HISTFILE',
]);
const RESERVED_PREFIXES = ['LD_', 'DYLD_', 'BASH_FUNC_'];
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

let bashPath: string | undefined;

/** Runs an approved command line and reports how it ended; never rejects once bash started. */
export async function executeCommand(approval: Approval, options: ExecuteCommandOptions): Promise<ExecuteCommandResult> {
  requireApproval(approval, 'execute_command', options.command);
  if (options.cwd !== approval.request.cwd) {
    throw new CmdopError('denied', `the approval was decided for working directory ${approval.request.cwd ?? '(home)'}, not ${options.cwd ?? '(home)'}`, {
      hint: 'Run the command in the working directory the gate decided on.',
    });
  }
  const timeoutMs = boundedInteger('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS, 1, MAX_TIMEOUT_MS);
  const cap = boundedInteger('maxOutputBytes', options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES, 1, MAX_OUTPUT_BYTES);
  const graceMs = boundedInteger('killGraceMs', options.killGraceMs ?? DEFAULT_KILL_GRACE_MS, 0, 10_000);
  if (options.command.includes('\0')) throw new CmdopError('invalid_input', 'the command contains a NUL character');
  const env = childEnvironment(approval.home, options.env ?? {});
  const cwd = approvedCwd(approval);
  await checkDirectory(cwd);
  if (options.signal?.aborted === true) {
    throw new CmdopError('tool_failed', 'the call was cancelled before the command started', { cause: options.signal.reason });
  }

  const started = performance.now();
  let child: ChildProcess;
  try {
    child = spawn(bash(), ['-c', options.command], {
      cwd,
      env,
      // stdin is /dev/null: a remote command must never wait on, or read, the daemon's input.
      stdio: ['ignore', 'pipe', 'pipe'],
      // setsid(): the child leads its own process group, so the whole group can be killed.
      detached: true,
    });
  } catch (error) {
    throw new CmdopError('tool_failed', `bash could not be started: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  return supervise(child, { timeoutMs, cap, graceMs, signal: options.signal, started });
}

interface Supervision {
  readonly timeoutMs: number;
  readonly cap: number;
  readonly graceMs: number;
  readonly signal: AbortSignal | undefined;
  readonly started: number;
}

function supervise(child: ChildProcess, run: Supervision): Promise<ExecuteCommandResult> {
  return new Promise((resolve, reject) => {
    const stdout = capture(child.stdout, run.cap);
    const stderr = capture(child.stderr, run.cap);
    const pid = child.pid;
    let timedOut = false;
    let aborted = false;
    let terminating = false;
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
    let settled = false;
    const timers = new Set<NodeJS.Timeout>();

    const later = (ms: number, action: () => void): void => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        action();
      }, ms);
      timers.add(timer);
    };

    const signalGroup = (signal: NodeJS.Signals): void => {
      if (pid === undefined) return;
      try {
        // Negative pid: the process group the child leads, so `cmd &` and nested shells die too.
        process.kill(-pid, signal);
      } catch {
        // ESRCH: the group is gone already. Nothing else may escape from a timer callback.
      }
    };

    const settle = (): void => {
      if (settled) return;
      settled = true;
      run.signal?.removeEventListener('abort', onAbort);
      // A pending SIGKILL stays scheduled: a member that ignored SIGTERM and let go of the
      // pipes must still die. Everything else is cancelled.
      if (!terminating) for (const timer of timers) clearTimeout(timer);
      resolve({
        exit_code: exit?.code ?? null,
        signal: exit?.signal ?? null,
        stdout: stdout.text(),
        stderr: stderr.text(),
        truncated: { stdout: stdout.dropped(), stderr: stderr.dropped() },
        timed_out: timedOut,
        aborted,
        duration_ms: Math.round(performance.now() - run.started),
      });
    };

    const terminate = (): void => {
      if (terminating) return;
      terminating = true;
      signalGroup('SIGTERM');
      later(run.graceMs, () => {
        signalGroup('SIGKILL');
        // A process that left the group (setsid) may still hold the pipes: stop waiting.
        later(DRAIN_AFTER_KILL_MS, () => {
          child.stdout?.destroy();
          child.stderr?.destroy();
          settle();
        });
      });
    };

    function onAbort(): void {
      aborted = true;
      terminate();
    }

    child.once('error', (error) => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      run.signal?.removeEventListener('abort', onAbort);
      signalGroup('SIGKILL');
      reject(new CmdopError('tool_failed', `bash could not be run: ${error.message}`, { cause: error }));
    });
    child.once('exit', (code, signal) => {
      exit = { code, signal };
    });
    // 'close' comes after the exit and once every holder of the pipes has let go. After bash
    // exits, a background child still writing to them keeps the call open, up to the timeout.
    child.once('close', (code: number | null, signal: NodeJS.Signals | null) => {
      exit ??= { code, signal };
      settle();
    });
    later(run.timeoutMs, () => {
      timedOut = true;
      terminate();
    });
    run.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

interface Capture {
  text(): string;
  dropped(): boolean;
}

/** Keeps the first `cap` bytes of a stream and reads (and drops) the rest, so the writer never blocks on a full pipe. */
function capture(stream: Readable | null, cap: number): Capture {
  const chunks: Buffer[] = [];
  let kept = 0;
  let dropped = false;
  stream?.on('data', (chunk: Buffer) => {
    const room = cap - kept;
    if (room <= 0) {
      dropped = true;
      return;
    }
    const piece = chunk.length > room ? chunk.subarray(0, room) : chunk;
    if (piece.length < chunk.length) dropped = true;
    chunks.push(piece);
    kept += piece.length;
  });
  return {
    text: () => Buffer.concat(chunks).toString('utf8'),
    dropped: () => dropped,
  };
}

/**
 * The child's whole environment: the daemon's own (tokens, keys, proxies) never reaches a
 * remote command. Only what a login would set, the locale, and the caller's checked entries.
 */
function childEnvironment(home: string, extra: Readonly<Record<string, string>>): Record<string, string> {
  const user = currentUser();
  const env: Record<string, string> = {
    PATH: process.env['PATH'] ?? FALLBACK_PATH,
    HOME: home,
    USER: user,
    LOGNAME: user,
    SHELL: '/bin/bash',
    TERM: 'dumb',
  };
  for (const name of ['LANG', 'LC_ALL'] as const) {
    const value = process.env[name];
    if (value !== undefined) env[name] = value;
  }
  for (const [name, value] of Object.entries(extra)) {
    if (!ENV_NAME.test(name)) throw new CmdopError('invalid_input', `environment variable name ${JSON.stringify(name)} is not valid`, { hint: 'Use letters, digits and _ only, not starting with a digit.' });
    if (RESERVED_NAMES.has(name) || RESERVED_PREFIXES.some((prefix) => name.startsWith(prefix))) {
      throw new CmdopError('invalid_input', `environment variable ${name} cannot be set for a remote command`, {
        hint: 'It would change how bash or the loader runs the approved line, which the gate never saw.',
      });
    }
    if (value.includes('\0')) throw new CmdopError('invalid_input', `environment variable ${name} must be a string without NUL characters`);
    env[name] = value;
  }
  return env;
}

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers).
    return process.env['USER'] ?? String(process.getuid?.() ?? '');
  }
}

async function checkDirectory(cwd: string): Promise<void> {
  const stats = await stat(cwd).catch((error: unknown) => {
    throw fsError(error, 'use the working directory', cwd);
  });
  if (!stats.isDirectory()) throw new CmdopError('invalid_input', `the working directory ${cwd} is not a directory`);
}

function bash(): string {
  // An absolute path, so the daemon's own PATH cannot pick the shell.
  bashPath ??= ['/bin/bash', '/usr/bin/bash', '/usr/local/bin/bash'].find((candidate) => existsSync(candidate)) ?? 'bash';
  return bashPath;
}
