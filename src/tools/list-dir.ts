/**
 * The list_dir tool: lists one directory, capped, after checking that the directory actually
 * opened is one the gate allows.
 */
import { constants } from 'node:fs';
import type { Dirent } from 'node:fs';
import { lstat, open, opendir } from 'node:fs/promises';
import { CmdopError, systemErrorCode } from '../errors.js';
import { approvedAbsolutePath, assertOpenedPathAllowed, requireApproval, type Approval } from './approval.js';
import { realPathOfHandle } from './fd-path.js';
import { fsError } from './fs-error.js';
import { boundedInteger } from './tool-input.js';

/** Entries returned when the caller gives no cap. */
export const DEFAULT_MAX_ENTRIES = 10_000;
/** The most entries a caller may ask for in one call. */
export const MAX_ENTRIES = 100_000;

export interface ListDirOptions {
  /** The path exactly as approved. */
  readonly path: string;
  /** Cap on entries returned; default 10 000. */
  readonly maxEntries?: number;
}

export type EntryType = 'file' | 'dir' | 'symlink' | 'other';

export interface DirEntry {
  readonly name: string;
  readonly type: EntryType;
  /** Size in bytes, for regular files. */
  readonly size?: number;
}

export interface ListDirResult {
  readonly path: string;
  /** Entries sorted by name; `.` and `..` are not listed. */
  readonly entries: readonly DirEntry[];
  /** True when the directory holds more entries than were returned. */
  readonly truncated: boolean;
}

/** How many lstat calls run at once when sizing files. */
const STAT_BATCH = 64;

/** Lists an approved directory. */
export async function listDirTool(approval: Approval, options: ListDirOptions): Promise<ListDirResult> {
  requireApproval(approval, 'list_dir', options.path);
  const maxEntries = boundedInteger('maxEntries', options.maxEntries ?? DEFAULT_MAX_ENTRIES, 1, MAX_ENTRIES);
  const path = approvedAbsolutePath(approval);

  const handle = await open(path, constants.O_RDONLY | constants.O_DIRECTORY).catch((error: unknown) => {
    if (systemErrorCode(error) === 'ENOTDIR') {
      throw new CmdopError('invalid_input', `${options.path} is not a directory`, { cause: error, hint: 'Use read_file for a file.' });
    }
    throw fsError(error, 'open', options.path);
  });
  try {
    const real = await realPathOfHandle(handle, path);
    assertOpenedPathAllowed(approval, real.path);
    // Through /proc/self/fd the listing comes from the directory that was checked, even if
    // its path has been swapped since.
    const location = real.pinned ? `/proc/self/fd/${handle.fd}` : real.path;
    const dir = await opendir(location, { bufferSize: 256 });
    const dirents: Dirent[] = [];
    let truncated = false;
    try {
      for (let entry = await dir.read(); entry !== null; entry = await dir.read()) {
        if (dirents.length === maxEntries) {
          truncated = true;
          break;
        }
        dirents.push(entry);
      }
    } finally {
      await dir.close();
    }
    const entries: DirEntry[] = [];
    for (let start = 0; start < dirents.length; start += STAT_BATCH) {
      const batch = dirents.slice(start, start + STAT_BATCH);
      entries.push(...(await Promise.all(batch.map((dirent) => describeEntry(location, dirent)))));
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    return { path: options.path, entries, truncated };
  } catch (error) {
    throw fsError(error, 'list', options.path);
  } finally {
    await handle.close();
  }
}

async function describeEntry(directory: string, dirent: Dirent): Promise<DirEntry> {
  const known = typeOf(dirent);
  if (known !== undefined && known !== 'file') return { name: dirent.name, type: known };
  // A file's size, or the type a file system did not report in the listing itself.
  try {
    const stats = await lstat(`${directory}/${dirent.name}`);
    const type = typeOf(stats) ?? 'other';
    return type === 'file' ? { name: dirent.name, type, size: stats.size } : { name: dirent.name, type };
  } catch {
    // Removed since it was listed: it was there, its details are not.
    return { name: dirent.name, type: known ?? 'other' };
  }
}

interface TypeProbe {
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
  isFIFO(): boolean;
  isSocket(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
}

function typeOf(probe: TypeProbe): EntryType | undefined {
  if (probe.isFile()) return 'file';
  if (probe.isDirectory()) return 'dir';
  if (probe.isSymbolicLink()) return 'symlink';
  if (probe.isFIFO() || probe.isSocket() || probe.isCharacterDevice() || probe.isBlockDevice()) return 'other';
  return undefined;
}
