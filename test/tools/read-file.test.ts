import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Policy } from '../../src/gate/policy.js';
import { readFileTool, type ReadFileOptions } from '../../src/tools/read-file.js';
import { createToolsFixture, type ToolsFixture } from './tools-fixture.js';

let fx: ToolsFixture;
let pub: string;
let secret: string;

beforeAll(async () => {
  fx = await createToolsFixture('read');
  pub = join(fx.root, 'public');
  secret = join(fx.root, 'secret');
  mkdirSync(pub);
  mkdirSync(secret);
  writeFileSync(join(pub, 'text.txt'), '0123456789');
  writeFileSync(join(pub, 'binary.bin'), Buffer.from([0xff, 0x00, 0xfe, 0x41]));
  writeFileSync(join(pub, 'bom.txt'), '\uFEFFhi');
  writeFileSync(join(secret, 'key.txt'), 'TOP-SECRET');
  writeFileSync(join(fx.home, 'notes.txt'), 'in home');
});
afterAll(() => {
  fx.cleanup();
});

function read(options: ReadFileOptions, policy?: Policy): ReturnType<typeof readFileTool> {
  return readFileTool(fx.approve({ tool: 'read_file', target: options.path }, policy), options);
}

describe('readFileTool', () => {
  it('reads a whole text file as utf8', async () => {
    const path = join(pub, 'text.txt');
    expect(await read({ path })).toEqual({ path, size: 10, offset: 0, bytes: 10, encoding: 'utf8', content: '0123456789', truncated: false, eof: true });
  });

  it.each([
    [{ offset: 2, length: 3 }, { content: '234', bytes: 3, truncated: false, eof: false }],
    [{ offset: 7 }, { content: '789', bytes: 3, truncated: false, eof: true }],
    [{ offset: 8, length: 100 }, { content: '89', bytes: 2, truncated: false, eof: true }],
    [{ offset: 50 }, { content: '', bytes: 0, truncated: false, eof: true }],
    [{ maxBytes: 4 }, { content: '0123', bytes: 4, truncated: true, eof: false }],
    [{ offset: 6, maxBytes: 4 }, { content: '6789', bytes: 4, truncated: false, eof: true }],
    [{ offset: 1, length: 6, maxBytes: 4 }, { content: '1234', bytes: 4, truncated: true, eof: false }],
  ])('reads the range %j', async (range, expected) => {
    expect(await read({ path: join(pub, 'text.txt'), ...range })).toMatchObject({ size: 10, encoding: 'utf8', ...expected });
  });

  it('returns bytes that are not UTF-8 as base64', async () => {
    const result = await read({ path: join(pub, 'binary.bin') });
    expect(result).toMatchObject({ encoding: 'base64', bytes: 4 });
    expect(Buffer.from(result.content, 'base64')).toEqual(Buffer.from([0xff, 0x00, 0xfe, 0x41]));
  });

  it('keeps a byte-order mark', async () => {
    expect((await read({ path: join(pub, 'bom.txt') })).content).toBe('\uFEFFhi');
  });

  it('reads a path relative to the home, as approved', async () => {
    expect(await read({ path: '~/notes.txt' })).toMatchObject({ path: '~/notes.txt', content: 'in home' });
  });

  it('reports a missing file as not found', async () => {
    await expect(read({ path: join(pub, 'missing.txt') })).rejects.toMatchObject({ code: 'not_found', exitCode: 4 });
  });

  it('refuses a FIFO at once instead of waiting for a writer', async () => {
    const fifo = join(pub, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const started = Date.now();
    await expect(read({ path: fifo })).rejects.toMatchObject({ code: 'invalid_input' });
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('refuses a directory and a device', async () => {
    await expect(read({ path: pub })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(read({ path: '/dev/null' })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('refuses out-of-range limits', async () => {
    await expect(read({ path: join(pub, 'text.txt'), maxBytes: 0 })).rejects.toMatchObject({ code: 'invalid_input' });
    await expect(read({ path: join(pub, 'text.txt'), offset: -1 })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('reads only the approved path', async () => {
    const approval = fx.approve({ tool: 'read_file', target: join(pub, 'text.txt') });
    await expect(readFileTool(approval, { path: join(secret, 'key.txt') })).rejects.toMatchObject({ code: 'denied' });
  });

  it('follows a symlink the gate allows', async () => {
    const link = join(pub, 'link-to-text');
    symlinkSync(join(pub, 'text.txt'), link);
    expect((await read({ path: link })).content).toBe('0123456789');
  });

  it('refuses, returning nothing, when the file was swapped for a link into a denied place after the check', async () => {
    const policy = fx.policy('default', { deny: [`read_file(${secret}/**)`] });
    const path = join(pub, 'swapped.txt');
    writeFileSync(path, 'harmless');
    const approval = fx.approve({ tool: 'read_file', target: path }, policy);
    rmSync(path);
    symlinkSync(join(secret, 'key.txt'), path);
    const error = await readFileTool(approval, { path }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'denied' });
    expect(JSON.stringify(error)).not.toContain('TOP-SECRET');
  });
});
