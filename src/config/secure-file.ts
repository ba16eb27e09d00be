/**
 * Reading and writing the daemon's state files (DESIGN.md §5, §8): a file others can read or
 * change, or that is not what it seems (a symbolic link, a FIFO), is refused; a write replaces
 * the file atomically, so a crash leaves the old or the new content, never a mix.
 */
import { randomBytes } from 'node:crypto';
import { constants, type Stats } from 'node:fs';
import { lstat, open, readdir, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { CmdopError, systemErrorCode } from '../errors.js';
import { formatMode } from './cmdop-home.js';

/** State files are small; anything larger is not one of ours. */
const DEFAULT_MAX_BYTES = 1024 * 1024;

/** Options for {@link readSecureFile}. */
export interface ReadSecureFileOptions {
  /** Refuse files larger than this many bytes (default 1 MiB). */
  readonly maxBytes?: number;
}

/** Options for {@link writeFileAtomic}. */
export interface WriteFileAtomicOptions {
  /** Called after the new content is durable and just before it replaces the file; throwing cancels the write. */
  readonly beforeRename?: () => void;
}

/**
 * Reads a state file as UTF-8, or returns undefined when it does not exist; refuses a file that
 * is a symbolic link or not a regular file, is owned by another user, or is group/world accessible.
 */
export async function readSecureFile(path: string, options: ReadSecureFileOptions = {}): Promise<string | undefined> {
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  let link: Stats;
  try {
    link = await lstat(path);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined;
    throw ioError('read', path, error);
  }
  if (link.isSymbolicLink()) throw symlinkError(path);
  assertPrivateFile(path, link);

  let handle: FileHandle;
  try {
    // O_NOFOLLOW: a symlink swapped in after the lstat fails here instead of being followed.
    // O_NONBLOCK: a FIFO swapped in cannot hang the open; fstat below then refuses it.
    handle = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (error) {
    const code = systemErrorCode(error);
    if (code === 'ENOENT') return undefined;
    if (code === 'ELOOP') throw symlinkError(path);
    throw ioError('read', path, error);
  }
  try {
    // The checks that count are on the file actually opened, not on the name.
    const info = await handle.stat();
    assertPrivateFile(path, info);
    if (info.size > maxBytes) throw tooLargeError(path, maxBytes);
    const bytes = await handle.readFile();
    if (bytes.length > maxBytes) throw tooLargeError(path, maxBytes);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    } catch (error) {
      throw new CmdopError('config', `${path} is not valid UTF-8 text`, {
        cause: error,
        hint: `Open it in a text editor and save it as UTF-8, or move it away to start from the defaults.`,
        details: { path },
      });
    }
  } catch (error) {
    throw error instanceof CmdopError ? error : ioError('read', path, error);
  } finally {
    await handle.close();
  }
}

/**
 * Throws CmdopError('config') unless the stats describe a regular file owned by this process's
 * user with no group or other permission bits.
 */
export function assertPrivateFile(path: string, info: Stats): void {
  if (!info.isFile()) {
    throw new CmdopError('config', `${path} is not a regular file (${describeKind(info)})`, {
      hint: `Move it out of the way; cmdop reads only regular files.`,
      details: { path, kind: describeKind(info) },
    });
  }
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new CmdopError('config', `${path} is owned by uid ${info.uid}, not by you (uid ${uid}); cmdop refuses a state file someone else controls`, {
      hint: `If the content is yours, run: chown ${uid} ${path} && chmod 600 ${path}`,
      details: { path, uid: info.uid, expectedUid: uid },
    });
  }
  if ((info.mode & 0o077) !== 0) {
    const mode = formatMode(info.mode);
    throw new CmdopError('config', `${path} has mode ${mode}: group or others can access it; cmdop refuses a state file anyone else can read or change`, {
      hint: `Run: chmod 600 ${path}`,
      details: { path, mode },
    });
  }
}

/**
 * Replaces `path` with `data` atomically: a unique temp file in the same directory (O_EXCL,
 * mode 0600) is written and fsynced, renamed over the target, and the directory is fsynced.
 * On failure the temp file is removed and the error thrown; the target is left as it was.
 */
export async function writeFileAtomic(
  path: string,
  data: string | Uint8Array,
  mode = 0o600,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const dir = dirname(path);
  const temp = join(dir, `${tempPrefix(path)}${process.pid}-${randomBytes(6).toString('hex')}`);
  let handle: FileHandle | undefined;
  let renamed = false;
  try {
    handle = await open(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    await handle.writeFile(data);
    // The umask filters the mode given to open; set the final mode exactly.
    await handle.chmod(mode);
    await handle.sync();
    await handle.close();
    handle = undefined;
    options.beforeRename?.();
    await rename(temp, path);
    renamed = true;
    await syncDirectory(dir);
  } catch (error) {
    if (handle !== undefined) await handle.close().catch(() => undefined);
    if (!renamed) await unlink(temp).catch(() => undefined);
    throw error instanceof CmdopError ? error : ioError('write', path, error);
  }
}

/** Removes temp files a crashed {@link writeFileAtomic} left beside `path`; call it only while holding the file's lock. */
export async function removeTempFiles(path: string): Promise<number> {
  const prefix = tempPrefix(path);
  let removed = 0;
  let names: string[];
  try {
    names = await readdir(dirname(path));
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return 0;
    throw ioError('read', dirname(path), error);
  }
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    try {
      await unlink(join(dirname(path), name));
      removed++;
    } catch (error) {
      if (systemErrorCode(error) !== 'ENOENT') throw ioError('write', join(dirname(path), name), error);
    }
  }
  return removed;
}

function tempPrefix(path: string): string {
  return `.${basename(path)}.tmp-`;
}

async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, constants.O_RDONLY);
    await handle.sync();
  } catch (error) {
    // Some file systems cannot open or fsync a directory; the rename itself already happened.
    const code = systemErrorCode(error);
    if (code !== 'EINVAL' && code !== 'ENOTSUP' && code !== 'EISDIR' && code !== 'EPERM' && code !== 'EACCES') throw error;
  } finally {
    await handle?.close();
  }
}

function describeKind(info: Stats): string {
  if (info.isDirectory()) return 'a directory';
  if (info.isSymbolicLink()) return 'a symbolic link';
  if (info.isFIFO()) return 'a FIFO';
  if (info.isSocket()) return 'a socket';
  if (info.isCharacterDevice() || info.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

function symlinkError(path: string): CmdopError {
  return new CmdopError('config', `${path} is a symbolic link; cmdop reads its state files only directly, never through a link`, {
    hint: `Replace the link with the file itself: cp --remove-destination "$(readlink -f ${path})" ${path} && chmod 600 ${path}`,
    details: { path, kind: 'a symbolic link' },
  });
}

function tooLargeError(path: string, maxBytes: number): CmdopError {
  return new CmdopError('config', `${path} is larger than ${maxBytes} bytes, too large to be a cmdop state file`, {
    hint: `Check what wrote it; move it away to start from the defaults.`,
    details: { path, maxBytes },
  });
}

function ioError(action: 'read' | 'write', path: string, error: unknown): CmdopError {
  const code = systemErrorCode(error);
  const reason = code ?? (error instanceof Error ? error.message : String(error));
  const hint =
    code === 'ENOSPC'
      ? 'Free some disk space and try again.'
      : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? `Check that you own ${dirname(path)} and that it is writable.`
        : `Check ${path} and its directory, then try again.`;
  return new CmdopError('config', `cannot ${action} ${path}: ${reason}`, { cause: error, hint, details: { path, ...(code === undefined ? {} : { errno: code }) } });
}
