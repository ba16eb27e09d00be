/**
 * Where the daemon keeps its state (DESIGN.md §5): `CMDOP_HOME`, default `~/.cmdop`. Every
 * path honours it, so several hosts can run side by side on one machine.
 */
import type { Stats } from 'node:fs';
import { chmod, lstat, mkdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { CmdopError, systemErrorCode } from '../errors.js';

/** Resolves the state directory: `CMDOP_HOME` (made absolute, `~/` expanded) if set, else `~/.cmdop`. */
export function resolveCmdopHome(env: Readonly<Record<string, string | undefined>> = process.env): string {
  const home = env.HOME !== undefined && env.HOME !== '' ? env.HOME : homedir();
  const configured = env.CMDOP_HOME?.trim();
  if (configured === undefined || configured === '') return join(home, '.cmdop');
  // A quoted "~/x" reaches us unexpanded; expanding it is what the user meant.
  if (configured === '~') return resolve(home);
  if (configured.startsWith('~/')) return resolve(home, configured.slice(2));
  return resolve(configured);
}

/** Creates the state directory with mode 0700 if needed, and refuses one others can write to. */
export async function ensureCmdopHome(home: string): Promise<void> {
  await ensurePrivateDir(home);
}

/** Creates a directory (and its parents) with mode 0700, and refuses an existing one that is not ours alone to write. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  let created: string | undefined;
  try {
    created = await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    // EEXIST: something that is not a directory is in the way; the checks below say what.
    if (systemErrorCode(error) !== 'EEXIST') throw cannotUse(dir, error);
  }
  // mkdir's mode is filtered by the umask; set it exactly on what we just made.
  if (created !== undefined) await chmod(dir, 0o700);
  let info: Stats;
  try {
    info = await stat(dir);
  } catch (error) {
    throw cannotUse(dir, error);
  }
  if (!info.isDirectory()) {
    const kind = (await lstat(dir)).isSymbolicLink() ? 'a symbolic link to something that is not a directory' : 'not a directory';
    throw new CmdopError('config', `${dir} is ${kind}`, {
      hint: `Move it out of the way, or point CMDOP_HOME at a directory.`,
      details: { path: dir },
    });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new CmdopError('config', `${dir} is owned by uid ${info.uid}, not by you (uid ${uid})`, {
      hint: `Run: chown ${uid} ${dir}   (or point CMDOP_HOME at a directory you own)`,
      details: { path: dir, uid: info.uid, expectedUid: uid },
    });
  }
  if ((info.mode & 0o022) !== 0) {
    throw new CmdopError('config', `${dir} can be written by group or others (mode ${formatMode(info.mode)})`, {
      hint: `Run: chmod 700 ${dir}`,
      details: { path: dir, mode: formatMode(info.mode) },
    });
  }
}

function cannotUse(dir: string, error: unknown): CmdopError {
  return new CmdopError('config', `cannot create or use the directory ${dir}: ${systemErrorCode(error) ?? String(error)}`, {
    cause: error,
    hint: 'Check that its parent exists and is writable by you (a dangling symbolic link is in the way?), or point CMDOP_HOME elsewhere.',
    details: { path: dir },
  });
}

/** Formats the permission bits of a mode as four octal digits (`0644`). */
export function formatMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/** The rule file, `permissions.yaml` (mode 0600, written atomically). */
export function permissionsPath(home: string): string {
  return join(home, 'permissions.yaml');
}

/** The daemon settings file, `config.yaml` (mode 0600). */
export function configPath(home: string): string {
  return join(home, 'config.yaml');
}

/** The log directory, `logs/`. */
export function logsDir(home: string): string {
  return join(home, 'logs');
}

/** The audit log, `logs/audit.log`. */
export function auditLogPath(home: string): string {
  return join(logsDir(home), 'audit.log');
}

/** The runtime directory, `run/` (local socket, pid file, local token; mode 0700). */
export function runDir(home: string): string {
  return join(home, 'run');
}
