import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsPathResolver } from '../../src/platform/fs-path-resolver.js';

let root: string;
const resolver = createFsPathResolver();

beforeAll(() => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'cmdop-resolve-')));
  mkdirSync(join(root, 'real', 'dir'), { recursive: true });
  writeFileSync(join(root, 'real', 'dir', 'file.txt'), 'x');
  symlinkSync(join(root, 'real'), join(root, 'link-dir'));
  symlinkSync(join(root, 'elsewhere', 'target.txt'), join(root, 'dangling'));
  symlinkSync('../real/dir', join(root, 'real', 'relative-link'));
  symlinkSync(join(root, 'loop-b'), join(root, 'loop-a'));
  symlinkSync(join(root, 'loop-a'), join(root, 'loop-b'));
  symlinkSync('/etc', join(root, 'etc-link'));
});
afterAll(() => {
  rmSync(root, { recursive: true, force: true });
});

describe('fs path resolver', () => {
  it.each([
    ['an existing file', 'real/dir/file.txt', 'real/dir/file.txt'],
    ['a file through a symlinked directory', 'link-dir/dir/file.txt', 'real/dir/file.txt'],
    ['a file not yet written, through a symlinked directory', 'link-dir/dir/new/deeper.txt', 'real/dir/new/deeper.txt'],
    ['a dangling link, to where it points', 'dangling', 'elsewhere/target.txt'],
    ['a relative link with ..', 'real/relative-link/file.txt', 'real/dir/file.txt'],
  ])('resolves %s', (_what, written, expected) => {
    const result = resolver.resolve(join(root, written));
    expect(result).toEqual({ kind: 'resolved', path: join(root, expected) });
    expect(resolver.resolveAll([join(root, written)])).toEqual([result]);
  });

  it('follows a link out to a protected place', () => {
    expect(resolver.resolve(join(root, 'etc-link', 'passwd'))).toEqual({ kind: 'resolved', path: '/etc/passwd' });
    expect(resolver.resolveAll([join(root, 'etc-link', 'new-file')])).toEqual([{ kind: 'resolved', path: '/etc/new-file' }]);
  });

  it('applies .. after a symlink as the kernel does, not as text', () => {
    // etc-link/../x is /x to the kernel (the parent of /etc), not <root>/x.
    expect(resolver.resolve(`${root}/etc-link/../etc/passwd`)).toEqual({ kind: 'resolved', path: '/etc/passwd' });
    expect(resolver.resolve(`${root}/link-dir/dir/../dir/file.txt`)).toEqual({ kind: 'resolved', path: join(root, 'real/dir/file.txt') });
    expect(resolver.resolve(`${root}/etc-link/../not-there/x`)).toEqual({ kind: 'resolved', path: '/not-there/x' });
    expect(resolver.resolveAll([`${root}/etc-link/../etc/passwd`, `${root}/etc-link/..`])).toEqual([
      { kind: 'resolved', path: '/etc/passwd' },
      { kind: 'resolved', path: '/' },
    ]);
  });

  it('reports a symlink loop as an error, never as a path', () => {
    const result = resolver.resolve(join(root, 'loop-a', 'x'));
    expect(result.kind).toBe('error');
    expect(resolver.resolveAll([join(root, 'loop-a')])[0]?.kind).toBe('error');
  });

  it('resolveAll agrees with resolve path by path', () => {
    const paths = ['real/dir/file.txt', 'link-dir/dir', 'link-dir/missing', 'dangling', 'real/relative-link', 'nothing/here', 'real/dir/file.txt/below'].map((p) => join(root, p));
    expect(resolver.resolveAll(paths)).toEqual(paths.map((p) => resolver.resolve(p)));
  });
});
