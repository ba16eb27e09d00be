/**
 * Where an open file descriptor really points. On Linux `/proc/self/fd/<fd>` names the file
 * the descriptor holds, whatever happened to the path since it was opened; elsewhere the best
 * available answer is the real path of the path, resolved again now.
 */
import { readlink, realpath } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { CmdopError, systemErrorCode } from '../errors.js';

/** The real path of an open file, and whether it came from the descriptor itself. */
export interface FdPath {
  readonly path: string;
  /**
   * True when the path was read from `/proc/self/fd`; `/proc/self/fd/<fd>/name` then reaches
   * inside exactly the opened directory, as openat(2) would.
   */
  readonly pinned: boolean;
}

const DELETED = ' (deleted)';

/**
 * Returns the real path of `handle`, opened from `openedPath`. A file or directory removed
 * since it was opened is CmdopError('not_found'): it has no path left to check.
 */
export async function realPathOfHandle(handle: FileHandle, openedPath: string): Promise<FdPath> {
  let link: string;
  try {
    link = await readlink(`/proc/self/fd/${handle.fd}`);
  } catch (error) {
    // No /proc (macOS, a container without it): resolve the path again instead.
    if (systemErrorCode(error) !== 'ENOENT') throw error;
    return { path: await realpath(openedPath), pinned: false };
  }
  if (!link.startsWith('/')) {
    throw new CmdopError('internal', `the descriptor opened from ${openedPath} is not a file (${link})`);
  }
  // The kernel marks an unlinked file with this suffix; a file may also really be named so,
  // which only its link count tells apart.
  if (link.endsWith(DELETED) && (await handle.stat()).nlink === 0) {
    throw new CmdopError('not_found', `${openedPath} was removed while it was being opened`, { hint: 'Try again once the file is in place.' });
  }
  return { path: link, pinned: true };
}

/** Joins a directory's real path and a name inside it. */
export function childPath(directory: string, name: string): string {
  return directory === '/' ? `/${name}` : `${directory}/${name}`;
}
