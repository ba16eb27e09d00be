/**
 * Runs the built `cmdop` binary as a user would, with its own CMDOP_HOME. The suite runs after
 * `npm run build`; without dist/ every CLI test fails with a message saying so.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CMDOP_BIN = join(REPO_ROOT, 'bin', 'run.js');

export interface CmdopRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly home: string;
  readonly stdin?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** A command to run the binary under, such as `['ip', 'netns', 'exec', 'ns1']`. */
  readonly wrap?: readonly string[];
}

/** Fails loudly when the build is missing, so CLI tests can never pass without the binary. */
export function assertBuilt(): void {
  if (!existsSync(join(REPO_ROOT, 'dist', 'commands', 'permissions', 'check.js'))) {
    throw new Error('dist/ is missing: run `npm run build` before the CLI tests (npm test does this)');
  }
}

/** Runs `cmdop ARGS` and collects its exit code and output. */
export function runCmdop(args: readonly string[], options: RunOptions): Promise<CmdopRun> {
  assertBuilt();
  return new Promise((resolve, reject) => {
    const [command, ...prefix] = options.wrap === undefined || options.wrap.length === 0 ? [process.execPath] : [...options.wrap, process.execPath];
    const child = spawn(command, [...prefix, CMDOP_BIN, ...args], {
      env: { ...process.env, CMDOP_HOME: options.home, NO_COLOR: '1', ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
    child.stdin.end(options.stdin ?? '');
  });
}

/** A fresh CMDOP_HOME folder, and a function that removes it. */
export function tempHome(prefix = 'cmdop-cli-'): { home: string; cleanup: () => void } {
  const home = mkdtempSync(join(tmpdir(), prefix));
  return { home, cleanup: () => { rmSync(home, { recursive: true, force: true }); } };
}
