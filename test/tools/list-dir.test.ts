import { execFileSync } from 'node:child_process';
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Policy } from '../../src/gate/policy.js';
import { listDirTool, type ListDirOptions } from '../../src/tools/list-dir.js';
import { createToolsFixture, type ToolsFixture } from './tools-fixture.js';

let fx: ToolsFixture;
let dir: string;

beforeAll(async () => {
  fx = await createToolsFixture('list');
  dir = join(fx.root, 'dir');
  mkdirSync(join(dir, 'sub'), { recursive: true });
  writeFileSync(join(dir, 'b.txt'), '12345');
  writeFileSync(join(dir, '.hidden'), '');
  symlinkSync('b.txt', join(dir, 'a-link'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
});
afterAll(() => {
  fx.cleanup();
});

function list(options: ListDirOptions, policy?: Policy): ReturnType<typeof listDirTool> {
  return listDirTool(fx.approve({ tool: 'list_dir', target: options.path }, policy), options);
}

describe('listDirTool', () => {
  it('lists names, types and file sizes, sorted by name', async () => {
    expect(await list({ path: dir })).toEqual({
      path: dir,
      truncated: false,
      entries: [
        { name: '.hidden', type: 'file', size: 0 },
        { name: 'a-link', type: 'symlink' },
        { name: 'b.txt', type: 'file', size: 5 },
        { name: 'fifo', type: 'other' },
        { name: 'sub', type: 'dir' },
      ],
    });
  });

  it('caps the entries and flags it', async () => {
    const many = join(fx.root, 'many');
    mkdirSync(many);
    for (let i = 0; i < 30; i++) writeFileSync(join(many, `f${String(i).padStart(2, '0')}`), '');
    const capped = await list({ path: many, maxEntries: 10 });
    expect(capped.entries).toHaveLength(10);
    expect(capped.truncated).toBe(true);
    const exact = await list({ path: many, maxEntries: 30 });
    expect(exact.entries).toHaveLength(30);
    expect(exact.truncated).toBe(false);
  });

  it('reports a missing directory as not found and a file as not a directory', async () => {
    await expect(list({ path: join(fx.root, 'missing') })).rejects.toMatchObject({ code: 'not_found' });
    await expect(list({ path: join(dir, 'b.txt') })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(list({ path: dir, maxEntries: 0 })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('refuses when the directory was swapped for a link into a denied place after the check', async () => {
    const base = join(fx.root, 'swap');
    const secret = join(base, 'secret');
    mkdirSync(secret, { recursive: true });
    writeFileSync(join(secret, 'private-name'), '');
    mkdirSync(join(base, 'public'));
    const policy = fx.policy('default', { deny: [`list_dir(${secret})`, `list_dir(${secret}/**)`] });
    const approval = fx.approve({ tool: 'list_dir', target: join(base, 'public') }, policy);
    renameSync(join(base, 'public'), join(base, 'public-was'));
    symlinkSync(secret, join(base, 'public'));
    const error = await listDirTool(approval, { path: join(base, 'public') }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'denied' });
    expect(JSON.stringify(error)).not.toContain('private-name');
  });
});
