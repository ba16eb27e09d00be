import { linkSync, lstatSync, mkdirSync, readdirSync, readFileSync, renameSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Policy } from '../../src/gate/policy.js';
import { writeFileTool, type WriteFileOptions } from '../../src/tools/write-file.js';
import { createToolsFixture, type ToolsFixture } from './tools-fixture.js';

let fx: ToolsFixture;
let dir: string;

beforeAll(async () => {
  fx = await createToolsFixture('write');
  dir = join(fx.root, 'out');
  mkdirSync(dir);
});
afterAll(() => {
  fx.cleanup();
});

function write(options: WriteFileOptions, policy?: Policy): ReturnType<typeof writeFileTool> {
  return writeFileTool(fx.approve({ tool: 'write_file', target: options.path }, policy), options);
}

/** Names in a directory that look like a temp file left behind. */
function leftovers(directory: string): string[] {
  return readdirSync(directory).filter((name) => name.endsWith('.tmp'));
}

describe('writeFileTool', () => {
  it('creates a file with the default mode 0644, whatever the umask', async () => {
    const path = join(dir, 'new.txt');
    const previous = process.umask(0o077);
    try {
      expect(await write({ path, content: 'hello' })).toEqual({ path, bytes: 5, created: true });
    } finally {
      process.umask(previous);
    }
    expect(readFileSync(path, 'utf8')).toBe('hello');
    expect(statSync(path).mode & 0o7777).toBe(0o644);
  });

  it('replaces a file atomically: a new inode, the given mode, an old hard link untouched', async () => {
    const path = join(dir, 'replace.txt');
    writeFileSync(path, 'old content');
    const other = join(dir, 'hard-link.txt');
    linkSync(path, other);
    const before = statSync(path).ino;
    const content = Buffer.from([0, 1, 2, 255]);
    expect(await write({ path, content, mode: 0o600 })).toEqual({ path, bytes: 4, created: false });
    const after = statSync(path);
    expect(after.ino).not.toBe(before);
    expect(after.mode & 0o7777).toBe(0o600);
    expect(readFileSync(path)).toEqual(content);
    // Rename swapped the name to a new file; the old inode, still linked, was never written.
    expect(readFileSync(other, 'utf8')).toBe('old content');
    expect(leftovers(dir)).toEqual([]);
  });

  it.each([0o4755, 0o2755, 0o1777, 0o10000, -1, 1.5])('refuses mode %o', async (mode) => {
    const path = join(dir, 'mode.txt');
    await expect(write({ path, content: 'x', mode })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('refuses to replace a symlink at the final name, leaving link and target as they were', async () => {
    const target = join(dir, 'link-target.txt');
    writeFileSync(target, 'original');
    const link = join(dir, 'link.txt');
    symlinkSync(target, link);
    await expect(write({ path: link, content: 'changed' })).rejects.toMatchObject({ code: 'denied' });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('original');
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses to replace a directory', async () => {
    const path = join(dir, 'a-directory');
    mkdirSync(path);
    await expect(write({ path, content: 'x' })).rejects.toMatchObject({ code: 'invalid_input' });
    expect(statSync(path).isDirectory()).toBe(true);
    expect(leftovers(dir)).toEqual([]);
  });

  it('refuses, writing nothing, when the parent was swapped for a link into a denied place after the check', async () => {
    const base = join(fx.root, 'swap');
    const secret = join(base, 'secret');
    const allowed = join(base, 'allowed');
    mkdirSync(secret, { recursive: true });
    mkdirSync(allowed);
    const policy = fx.policy('bypass', { deny: [`write_file(${secret}/**)`] });
    const path = join(allowed, 'file');
    const approval = fx.approve({ tool: 'write_file', target: path }, policy);
    renameSync(allowed, join(base, 'allowed-was'));
    symlinkSync(secret, allowed);
    const error = await writeFileTool(approval, { path, content: 'planted' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'denied', exitCode: 3 });
    expect(readdirSync(secret)).toEqual([]);
  });

  it('reports a missing directory as not found, and creates it when asked to', async () => {
    const path = join(dir, 'deep', 'er', 'file.txt');
    await expect(write({ path, content: 'x' })).rejects.toMatchObject({ code: 'not_found' });
    expect(await write({ path, content: 'x', createParents: true })).toMatchObject({ created: true });
    expect(readFileSync(path, 'utf8')).toBe('x');
  });

  it('creates no parent directory inside a denied place', async () => {
    const base = join(fx.root, 'parents');
    const secret = join(base, 'secret');
    mkdirSync(secret, { recursive: true });
    const policy = fx.policy('bypass', { deny: [`write_file(${secret}/**)`] });
    // Approved while `plain` does not exist; then a link to the denied place takes its name.
    const path = join(base, 'plain', 'new', 'file.txt');
    const approval = fx.approve({ tool: 'write_file', target: path }, policy);
    symlinkSync(secret, join(base, 'plain'));
    await expect(writeFileTool(approval, { path, content: 'x', createParents: true })).rejects.toMatchObject({ code: 'denied' });
    expect(readdirSync(secret)).toEqual([]);
  });

  it('writes only the approved path', async () => {
    const approval = fx.approve({ tool: 'write_file', target: join(dir, 'approved.txt') });
    await expect(writeFileTool(approval, { path: join(dir, 'other.txt'), content: 'x' })).rejects.toMatchObject({ code: 'denied' });
    expect(readdirSync(dir)).not.toContain('other.txt');
  });
});
