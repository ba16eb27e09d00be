import type { Stats } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { BaseCommand } from '../src/cli/base-command.js';
import { API_KEY_FILE } from '../src/client/workspace-keys.js';
import { formatMode, resolveCmdopHome } from '../src/config/cmdop-home.js';
import { CmdopError, systemErrorCode } from '../src/errors.js';
import { openSecretStore } from '../src/identity/secret-store.js';

/** Directories cmdop keeps private (DESIGN.md §5): nobody else may even list them. */
const PRIVATE_DIRS = ['run', 'tls'] as const;
/** The scan stops after this many entries or this depth; CMDOP_HOME holds a few dozen files. */
const MAX_ENTRIES = 10_000;
const MAX_DEPTH = 8;

/** One thing wrong, and the command that fixes it. */
export interface DoctorProblem {
  readonly path: string;
  readonly problem: string;
  readonly fix: string;
}

/** What `cmdop doctor --json` prints. */
export interface DoctorResult {
  readonly ok: boolean;
  readonly cmdop_home: string;
  readonly cmdop_home_exists: boolean;
  /** With the file store, `location` holds the OAuth tokens and `api_keys_location` the workspace API keys. */
  readonly secret_store: { readonly kind: 'keyring' | 'file'; readonly location: string; readonly api_keys_location: string; readonly reason: string } | null;
  readonly directories: readonly { readonly path: string; readonly mode: string | null; readonly expected: '0700' }[];
  readonly scanned: number;
  readonly truncated: boolean;
  readonly problems: readonly DoctorProblem[];
}

export default class Doctor extends BaseCommand {
  static override summary = "Check this host's state directory: the secret store in use and files others can read.";
  static override description = [
    'Reports CMDOP_HOME, which secret store holds API keys and tokens (the OS keyring, or when',
    'no keyring is available CMDOP_HOME/ssh_workspaces.json for API keys and CMDOP_HOME/secrets.json',
    'for OAuth tokens) and why, and every file or directory',
    'under CMDOP_HOME that is group/world accessible or owned by someone else, with the command',
    'that fixes it. run/ and tls/ must be 0700.',
    '',
    'Exit status: 0 when all is well, 6 when a problem is found. Secrets are never printed.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> doctor',
    '<%= config.bin %> doctor --json',
    'CMDOP_HOME=/srv/cmdop-b <%= config.bin %> doctor',
    'CMDOP_SECRET_STORE=file <%= config.bin %> doctor',
  ];

  async run(): Promise<DoctorResult> {
    await this.parse(Doctor);
    const result = await diagnose(resolveCmdopHome(process.env));
    if (!this.jsonEnabled()) this.log(renderDoctor(result));
    this.setExitCode(result.ok ? 0 : 'config');
    return result;
  }
}

/** Checks CMDOP_HOME and the secret store; reads no secret. */
async function diagnose(home: string): Promise<DoctorResult> {
  const problems: DoctorProblem[] = [];

  let secretStore: DoctorResult['secret_store'] = null;
  try {
    // The notice repeats the reason, which the report shows already.
    const store = await openSecretStore({ home });
    secretStore = { kind: store.kind, location: store.location, api_keys_location: store.kind === 'file' ? join(home, API_KEY_FILE) : store.location, reason: store.reason };
  } catch (error) {
    const failure = CmdopError.from(error, 'config');
    problems.push({ path: 'CMDOP_SECRET_STORE', problem: failure.message, fix: failure.hint ?? 'Unset CMDOP_SECRET_STORE.' });
  }

  const homeInfo = await lstatOrUndefined(home);
  const directories = await Promise.all(
    PRIVATE_DIRS.map(async (name) => {
      const info = await lstatOrUndefined(join(home, name));
      return { path: join(home, name), mode: info === undefined ? null : formatMode(info.mode), expected: '0700' as const };
    }),
  );
  let scanned = 0;
  let truncated = false;
  if (homeInfo !== undefined) {
    checkEntry(home, homeInfo, 'home', problems);
    const walk = async (dir: string, depth: number): Promise<void> => {
      let names: string[];
      try {
        names = (await readdir(dir)).sort();
      } catch (error) {
        problems.push({ path: dir, problem: `cannot list it (${systemErrorCode(error) ?? String(error)})`, fix: `Check that you own ${dir}.` });
        return;
      }
      for (const name of names) {
        if (scanned >= MAX_ENTRIES) {
          truncated = true;
          return;
        }
        const path = join(dir, name);
        const info = await lstatOrUndefined(path);
        if (info === undefined) continue;
        scanned++;
        const isPrivateDir = depth === 0 && (PRIVATE_DIRS as readonly string[]).includes(name);
        checkEntry(path, info, isPrivateDir ? 'private-dir' : 'entry', problems);
        if (info.isDirectory()) {
          if (depth + 1 >= MAX_DEPTH) truncated = true;
          else await walk(path, depth + 1);
        }
      }
    };
    if (homeInfo.isDirectory()) await walk(home, 0);
  }

  return {
    ok: problems.length === 0,
    cmdop_home: home,
    cmdop_home_exists: homeInfo !== undefined,
    secret_store: secretStore,
    directories,
    scanned,
    truncated,
    problems,
  };
}

function checkEntry(path: string, info: Stats, role: 'home' | 'private-dir' | 'entry', problems: DoctorProblem[]): void {
  if (info.isSymbolicLink()) {
    if (role === 'entry') problems.push({ path, problem: 'is a symbolic link; cmdop refuses state files reached through a link', fix: `Replace the link with the file itself, or remove it: rm ${path}` });
    return;
  }
  // Sockets and FIFOs (the daemon's socket) are protected by their 0700 directory.
  if (!info.isFile() && !info.isDirectory()) return;
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    problems.push({ path, problem: `is owned by uid ${info.uid}, not by you (uid ${uid})`, fix: `chown ${uid} ${path}` });
  }
  const mode = formatMode(info.mode);
  if (info.isFile()) {
    if ((info.mode & 0o077) !== 0) problems.push({ path, problem: `has mode ${mode}: group or others can access it`, fix: `chmod 600 ${path}` });
  } else if (role === 'private-dir') {
    if ((info.mode & 0o077) !== 0) problems.push({ path, problem: `has mode ${mode}; it must be 0700`, fix: `chmod 700 ${path}` });
  } else if ((info.mode & 0o022) !== 0) {
    problems.push({ path, problem: `has mode ${mode}: group or others can change what is in it`, fix: `chmod go-w ${path}` });
  }
}

async function lstatOrUndefined(path: string): Promise<Stats | undefined> {
  try {
    return await lstat(path);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined;
    throw new CmdopError('config', `cannot inspect ${path}: ${systemErrorCode(error) ?? String(error)}`, {
      cause: error,
      hint: `Check that you own ${path} and its parent directory.`,
      details: { path },
    });
  }
}

function renderDoctor(result: DoctorResult): string {
  const lines: string[] = [];
  lines.push(`CMDOP_HOME    ${result.cmdop_home}${result.cmdop_home_exists ? '' : ' (does not exist yet)'}`);
  if (result.secret_store === null) lines.push('secret store  none (see below)');
  else if (result.secret_store.kind === 'keyring') lines.push(`secret store  keyring: ${result.secret_store.location}`, `              because ${result.secret_store.reason}`);
  else lines.push(`secret store  file: ${result.secret_store.location} (OAuth tokens), ${result.secret_store.api_keys_location} (API keys)`, `              because ${result.secret_store.reason}`);
  for (const dir of result.directories) {
    const name = `${relative(result.cmdop_home, dir.path)}/`.padEnd(14);
    lines.push(`${name}${dir.mode ?? 'not created yet'}${dir.mode === null || dir.mode === dir.expected ? '' : ` (expected ${dir.expected})`}`);
  }
  lines.push(`scanned       ${result.scanned} entries${result.truncated ? ` (stopped early: more than ${MAX_ENTRIES} entries or deeper than ${MAX_DEPTH} levels)` : ''}`);
  if (result.problems.length === 0) {
    lines.push('', 'No problems found.');
  } else {
    lines.push('', `${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}:`);
    for (const problem of result.problems) lines.push(`  ${problem.path} ${problem.problem}`, `    fix: ${problem.fix}`);
  }
  return lines.join('\n');
}
