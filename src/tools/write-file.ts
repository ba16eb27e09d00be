/**
 * The write_file tool: replaces one file atomically (temp file, fsync, rename, fsync of the
 * directory), inside the very directory whose real path the gate allowed, never through a
 * symlink at the final name.
 */
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { CmdopError, systemErrorCode } from '../errors.js';
import { approvedAbsolutePath, assertOpenedPathAllowed, requireApproval, type Approval } from './approval.js';
import { childPath, realPathOfHandle, type FdPath } from './fd-path.js';
import { fsError } from './fs-error.js';
import { boundedInteger } from './tool-input.js';

export interface WriteFileOptions {
  /** The path exactly as approved. */
  readonly path: string;
  /** The new content; a string is written as UTF-8. */
  readonly content: Buffer | string;
  /** Permission bits of the file; default 0o644. Setuid, setgid and sticky bits are refused. */
  readonly mode?: number;
  /** Create missing parent directories (mode 0755); default false. */
  readonly createParents?: boolean;
}

export interface WriteFileResult {
  readonly path: string;
  /** Bytes written. */
  readonly bytes: number;
  /** True when no file of that name existed before. */
  readonly created: boolean;
}

/** Mode of a written file when the caller gives none. */
export const DEFAULT_FILE_MODE = 0o644;

const DIRECTORY_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY;
// O_NOFOLLOW on the temp file: its random name cannot be guessed in advance, but a link
// planted there anyway must make the open fail, not be written through.
const TEMP_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** An open directory and the prefix that reaches inside exactly it. */
interface OpenDirectory {
  readonly handle: FileHandle;
  readonly real: FdPath;
  readonly prefix: string;
}

/** Writes an approved file atomically, or refuses and leaves nothing behind. */
export async function writeFileTool(approval: Approval, options: WriteFileOptions): Promise<WriteFileResult> {
  requireApproval(approval, 'write_file', options.path);
  const mode = fileMode(options.mode ?? DEFAULT_FILE_MODE);
  const data = typeof options.content === 'string' ? Buffer.from(options.content, 'utf8') : options.content;
  const path = approvedAbsolutePath(approval);
  const cut = path.lastIndexOf('/');
  const name = path.slice(cut + 1);
  if (name === '' || name === '..') {
    throw new CmdopError('invalid_input', `${options.path} names a directory, not a file`, { hint: 'Give the path of the file to write.' });
  }
  const parent = cut === 0 ? '/' : path.slice(0, cut);

  const directory = await openParent(approval, parent, name, options);
  const tempName = `.cmdop-${randomBytes(8).toString('hex')}.tmp`;
  let tempCreated = false;
  try {
    const temp = await open(inside(directory, tempName), TEMP_FLAGS, 0o600);
    tempCreated = true;
    try {
      await temp.writeFile(data);
      // fchmod, not the open mode: the umask must not change what the caller asked for.
      await temp.chmod(mode);
      await temp.sync();
    } finally {
      await temp.close();
    }
    // Checked again as late as possible: the directory may have been moved meanwhile.
    const real = await realPathOfHandle(directory.handle, parent);
    assertOpenedPathAllowed(approval, childPath(real.path, name));
    const created = await checkFinalName(inside(directory, name), options.path);
    await rename(inside(directory, tempName), inside(directory, name));
    tempCreated = false;
    await syncDirectory(directory.handle);
    return { path: options.path, bytes: data.length, created };
  } catch (error) {
    throw fsError(error, 'write', options.path);
  } finally {
    if (tempCreated) await unlink(inside(directory, tempName)).catch(() => undefined);
    await directory.handle.close();
  }
}

function fileMode(mode: number): number {
  boundedInteger('mode', mode, 0, 0o7777);
  if ((mode & 0o7000) !== 0) {
    throw new CmdopError('invalid_input', `mode ${mode.toString(8)} sets the setuid, setgid or sticky bit, which write_file refuses`, {
      hint: 'Give permission bits only, such as 644 or 600.',
    });
  }
  return mode;
}

/**
 * Opens the target's directory and checks its real path (with the file name) against the gate
 * before anything is created. With createParents, missing directories are made one at a time
 * inside the last one opened, after the check, so a swapped link cannot redirect them.
 */
async function openParent(approval: Approval, parent: string, name: string, options: WriteFileOptions): Promise<OpenDirectory> {
  const segments = parent.split('/').filter((s) => s.length > 0);
  let existing = segments.length;
  let handle: FileHandle | undefined;
  while (handle === undefined) {
    const path = '/' + segments.slice(0, existing).join('/');
    try {
      handle = await open(path, DIRECTORY_FLAGS);
    } catch (error) {
      const code = systemErrorCode(error);
      if (code === 'ENOTDIR' && existing === segments.length) {
        throw new CmdopError('invalid_input', `the parent of ${options.path} is not a directory`, { cause: error });
      }
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || existing === 0) throw fsError(error, 'open the directory of', options.path);
      if (options.createParents !== true) {
        throw new CmdopError('not_found', `the directory of ${options.path} does not exist`, { cause: error, hint: 'Create it first, or ask for parent directories to be created.' });
      }
      existing -= 1;
    }
  }
  const missing = segments.slice(existing);
  try {
    if (missing.includes('..')) {
      throw new CmdopError('invalid_input', `${options.path} climbs with .. through directories that do not exist`, { hint: 'Give the path without .. segments.' });
    }
    let directory = await describeDirectory(handle, '/' + segments.slice(0, existing).join('/'));
    assertOpenedPathAllowed(approval, childPath(directory.real.path, [...missing, name].join('/')));
    for (const segment of missing) {
      const next = inside(directory, segment);
      await mkdir(next, 0o755).catch((error: unknown) => {
        if (systemErrorCode(error) !== 'EEXIST') throw error;
      });
      // O_NOFOLLOW: a link raced into place of the new directory is refused, not entered.
      const child = await open(next, DIRECTORY_FLAGS | constants.O_NOFOLLOW);
      const previous = directory.handle;
      handle = child;
      await previous.close();
      directory = await describeDirectory(child, next);
    }
    assertOpenedPathAllowed(approval, childPath(directory.real.path, name));
    return directory;
  } catch (error) {
    await handle.close();
    throw fsError(error, 'create the directory of', options.path);
  }
}

async function describeDirectory(handle: FileHandle, openedPath: string): Promise<OpenDirectory> {
  const real = await realPathOfHandle(handle, openedPath);
  return { handle, real, prefix: real.pinned ? `/proc/self/fd/${handle.fd}` : real.path };
}

function inside(directory: OpenDirectory, name: string): string {
  return `${directory.prefix}/${name}`;
}

/**
 * Refuses to replace a symlink (the gate approved a file, not a link and not what it points
 * to), a directory or a special file. Returns true when the name is free.
 */
async function checkFinalName(path: string, shown: string): Promise<boolean> {
  const stats = await lstat(path).catch((error: unknown) => {
    if (systemErrorCode(error) === 'ENOENT') return undefined;
    throw error;
  });
  if (stats === undefined) return true;
  if (stats.isSymbolicLink()) {
    throw new CmdopError('denied', `${shown} is a symbolic link; write_file does not replace or write through links`, {
      hint: 'Write to the file the link points to, by its own path.',
    });
  }
  if (stats.isDirectory()) throw new CmdopError('invalid_input', `${shown} is a directory`);
  if (!stats.isFile()) throw new CmdopError('invalid_input', `${shown} is not a regular file; write_file replaces regular files only`);
  return false;
}

async function syncDirectory(handle: FileHandle): Promise<void> {
  try {
    await handle.sync();
  } catch (error) {
    // Some file systems cannot fsync a directory; the rename itself has already happened.
    const code = systemErrorCode(error);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EBADF') throw error;
  }
}
