/**
 * The real file system behind the gate's PathResolver: follows symlinks to what would be
 * opened, including dangling links and paths that do not exist yet.
 */
import { lstatSync, readlinkSync, realpathSync } from 'node:fs';
import { collapse } from '../../floor/paths.js';
import { systemErrorCode } from '../errors.js';
import type { PathResolution, PathResolver } from '../gate/gate.js';

/** Symlink hops followed before a path is called a loop, as Linux's MAXSYMLINKS. */
const MAX_HOPS = 40;

/** Creates a resolver over the real file system. */
export function createFsPathResolver(): PathResolver {
  return { resolve, resolveAll };
}

/**
 * Resolves many paths with one lstat each: a path that is not a symlink resolves to its
 * directory's real path plus its name, and each directory is resolved once per call.
 */
function resolveAll(paths: readonly string[]): PathResolution[] {
  const directories = new Map<string, PathResolution>();
  return paths.map((path) => {
    const cut = path.lastIndexOf('/');
    const name = path.slice(cut + 1);
    if (path === '/' || cut < 0 || name === '..' || name === '.' || name === '') return resolve(path);
    let isLink = false;
    try {
      isLink = lstatSync(path, { throwIfNoEntry: false })?.isSymbolicLink() ?? false;
    } catch (error) {
      const code = systemErrorCode(error);
      if (code !== 'ENOTDIR') return { kind: 'error', reason: code ?? String(error) };
    }
    if (isLink) return resolve(path);
    const parent = cut === 0 ? '/' : path.slice(0, cut);
    let directory = directories.get(parent);
    if (directory === undefined) {
      directory = resolveProbing(parent);
      directories.set(parent, directory);
    }
    if (directory.kind === 'error') return directory;
    return { kind: 'resolved', path: directory.path === '/' ? `/${name}` : `${directory.path}/${name}` };
  });
}

function resolve(absolutePath: string): PathResolution {
  // realpath first: targets of read_file and list_dir usually exist, and one call settles them.
  // Missing paths (a file about to be written) take the slower walk; command arguments, most
  // of which are no paths at all, go through resolveAll's lstat instead of an exception each.
  try {
    return { kind: 'resolved', path: realpathSync.native(absolutePath) };
  } catch (error) {
    const code = systemErrorCode(error);
    // ENOENT: missing, or a dangling symlink; ENOTDIR: a file where a directory should be.
    if (code === 'ENOENT' || code === 'ENOTDIR') return resolveMissing(absolutePath);
    return { kind: 'error', reason: code ?? String(error) };
  }
}

/**
 * resolve() for paths that are often missing (the directories of command arguments): an lstat
 * that does not throw first, so a missing path costs no exception.
 */
function resolveProbing(absolutePath: string): PathResolution {
  try {
    if (lstatSync(absolutePath, { throwIfNoEntry: false }) === undefined) return resolveMissing(absolutePath);
  } catch (error) {
    const code = systemErrorCode(error);
    if (code === 'ENOTDIR') return resolveMissing(absolutePath);
    return { kind: 'error', reason: code ?? String(error) };
  }
  return resolve(absolutePath);
}

/**
 * Walks a path that does not fully exist, component by component: an existing component is
 * taken as it is, a symlink (dangling or not) is followed, and the first missing component
 * ends the walk with the rest appended unchanged.
 */
function resolveMissing(absolutePath: string): PathResolution {
  // `..` is applied as the walk reaches it, after any symlink before it is followed: the
  // kernel's reading, not the text's.
  let pending = absolutePath.split('/').filter((s) => s.length > 0);
  let current = '/';
  for (let hops = 0; pending.length > 0; ) {
    const segment = pending[0] as string;
    // `..` inside a link target applies to the real directory reached so far, which is
    // what the kernel does; collapsing it as text first would be wrong after a symlink.
    if (segment === '.' || segment === '..') {
      pending = pending.slice(1);
      if (segment === '..') current = current.lastIndexOf('/') <= 0 ? '/' : current.slice(0, current.lastIndexOf('/'));
      continue;
    }
    const next = current === '/' ? `/${segment}` : `${current}/${segment}`;
    let isLink: boolean;
    try {
      const stats = lstatSync(next, { throwIfNoEntry: false });
      if (stats === undefined) return { kind: 'resolved', path: collapse([current, ...pending].join('/')) };
      isLink = stats.isSymbolicLink();
    } catch (error) {
      const code = systemErrorCode(error);
      if (code === 'ENOTDIR') return { kind: 'resolved', path: collapse([current, ...pending].join('/')) };
      return { kind: 'error', reason: code ?? String(error) };
    }
    pending = pending.slice(1);
    if (!isLink) {
      current = next;
      continue;
    }
    if (++hops > MAX_HOPS) return { kind: 'error', reason: 'ELOOP: too many levels of symbolic links' };
    let target: string;
    try {
      target = readlinkSync(next);
    } catch (error) {
      return { kind: 'error', reason: systemErrorCode(error) ?? String(error) };
    }
    if (target.startsWith('/')) current = '/';
    pending = [...target.split('/').filter((s) => s.length > 0), ...pending];
  }
  return { kind: 'resolved', path: current };
}
