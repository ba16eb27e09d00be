/**
 * Path spelling, made canonical without touching the file system: `~` expansion, absolute
 * against a base, `//`, `.` and `..` collapsed. The floor and the gate both use this one
 * function, so a path is never normalised two different ways.
 */

export interface NormalizeOptions {
  /** The receiving user's home, absolute. `~` and `~/x` expand to it. */
  readonly home: string;
  /** What a relative path is taken against; defaults to `home`. */
  readonly cwd?: string | undefined;
}

/**
 * Returns the absolute, normalised spelling of `path`. `~user` forms are kept as the literal
 * directory `/home/user` equivalent is unknowable here, so they are taken relative to the
 * parent of `home` (the usual layout), which errs towards matching protected names.
 */
export function normalizePath(path: string, options: NormalizeOptions): string {
  return collapse(absolutePath(path, options));
}

/**
 * Returns `path` made absolute as normalizePath does (`~` expanded, relative forms taken
 * against `cwd`), collapsing only `//` and `.` segments and a trailing `/`: every `..` is
 * kept. The kernel applies `..` to the directory a symlink leads to (`/tmp/ssl/../shadow`,
 * with `ssl → /etc/ssl`, opens `/etc/shadow`), so a path that is to be resolved through the
 * file system must reach the resolver in this form, not collapsed as text.
 */
export function absolutePath(path: string, options: NormalizeOptions): string {
  let p = path;
  if (p === '~' || p.startsWith('~/')) {
    p = options.home + p.slice(1);
  } else if (p.startsWith('~')) {
    p = joinDir(parentOf(options.home), p.slice(1));
  } else if (!p.startsWith('/')) {
    p = joinDir(options.cwd ?? options.home, p);
  }
  return collapseDots(p);
}

/** Collapses `//` and `.` segments (and a trailing `/`) of an absolute path, keeping `..`. */
export function collapseDots(absolute: string): string {
  const out: string[] = [];
  for (const segment of absolute.split('/')) {
    if (segment === '' || segment === '.') continue;
    out.push(segment);
  }
  return '/' + out.join('/');
}

/** True when `path` has a `..` segment. */
export function hasDotDot(path: string): boolean {
  return DOT_DOT.test(path);
}

const DOT_DOT = /(?:^|\/)\.\.(?:\/|$)/;

function joinDir(dir: string, rest: string): string {
  return dir.endsWith('/') ? dir + rest : `${dir}/${rest}`;
}

function parentOf(dir: string): string {
  const collapsed = collapse(dir);
  const cut = collapsed.lastIndexOf('/');
  return cut <= 0 ? '/' : collapsed.slice(0, cut);
}

/** Collapses `//`, `.` and `..` in an absolute path; `..` above `/` stays at `/`. */
export function collapse(absolute: string): string {
  const out: string[] = [];
  for (const segment of absolute.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') out.pop();
    else out.push(segment);
  }
  return '/' + out.join('/');
}

/** The segments of an absolute normalised path (`/a/b` → `['a', 'b']`). */
export function segmentsOf(absolute: string): string[] {
  return absolute === '/' ? [] : absolute.slice(1).split('/');
}

/** True when `path` is `prefix` or lies below it. Both absolute and normalised. */
export function isUnder(path: string, prefix: string): boolean {
  if (prefix === '/') return true;
  return path === prefix || path.startsWith(prefix + '/');
}
