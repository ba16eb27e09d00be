import { execFileSync } from 'node:child_process';
import { chmod, chown, mkdir, readFile, readdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readSecureFile, removeTempFiles, writeFileAtomic } from '../../src/config/secure-file.js';
import { CmdopError } from '../../src/errors.js';
import { createTempHome, removeTempHome } from './temp-home.js';

const isRoot = process.getuid?.() === 0;

let home: string;
beforeEach(async () => {
  home = await createTempHome();
});
afterEach(async () => {
  await removeTempHome(home);
});

async function privateFile(name: string, content: string): Promise<string> {
  const path = join(home, name);
  await writeFile(path, content);
  await chmod(path, 0o600);
  return path;
}

async function refusal(path: string): Promise<CmdopError> {
  const error = await readSecureFile(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CmdopError);
  return error as CmdopError;
}

describe('readSecureFile', () => {
  it('returns undefined for a missing file', async () => {
    expect(await readSecureFile(join(home, 'nope.yaml'))).toBeUndefined();
  });

  it('reads a 0600 file owned by the user', async () => {
    const path = await privateFile('ok.yaml', 'version: 1\n');
    expect(await readSecureFile(path)).toBe('version: 1\n');
  });

  it.each([0o644, 0o640, 0o604, 0o660, 0o606, 0o601])('refuses mode %o with the chmod fix', async (mode) => {
    const path = await privateFile('loose.yaml', 'version: 1\n');
    await chmod(path, mode);
    const error = await refusal(path);
    expect(error.code).toBe('config');
    expect(error.message).toContain(path);
    expect(error.message).toContain(`mode 0${mode.toString(8)}`);
    expect(error.hint).toBe(`Run: chmod 600 ${path}`);
  });

  it('refuses a symbolic link, even to a private file', async () => {
    const target = await privateFile('real.yaml', 'version: 1\n');
    const link = join(home, 'link.yaml');
    await symlink(target, link);
    const error = await refusal(link);
    expect(error.code).toBe('config');
    expect(error.message).toBe(`${link} is a symbolic link; cmdop reads its state files only directly, never through a link`);
    expect(error.hint).toContain(link);
  });

  it('refuses a directory and a FIFO without hanging', async () => {
    const dir = join(home, 'dir.yaml');
    await mkdir(dir, { mode: 0o700 });
    expect((await refusal(dir)).message).toContain('is not a regular file (a directory)');
    const fifo = join(home, 'fifo.yaml');
    execFileSync('mkfifo', ['-m', '600', fifo]);
    expect((await refusal(fifo)).message).toContain('is not a regular file (a FIFO)');
  });

  // Giving a file to another uid needs root; CI runs as root, so there it always runs.
  it.runIf(isRoot || process.env.CI === 'true')('refuses a file owned by another uid, with the chown fix', async () => {
    const path = await privateFile('theirs.yaml', 'version: 1\n');
    await chown(path, 65534, 65534);
    const error = await refusal(path);
    expect(error.code).toBe('config');
    expect(error.message).toContain(`${path} is owned by uid 65534, not by you (uid 0)`);
    expect(error.hint).toContain(`chown 0 ${path}`);
  });

  it('refuses a file larger than the limit', async () => {
    const path = await privateFile('big.yaml', 'x'.repeat(2000));
    await expect(readSecureFile(path, { maxBytes: 1000 })).rejects.toMatchObject({ code: 'config' });
  });

  it('refuses invalid UTF-8', async () => {
    const path = join(home, 'bin.yaml');
    await writeFile(path, Buffer.from([0x76, 0xff, 0xfe, 0x0a]), { mode: 0o600 });
    await expect(readSecureFile(path)).rejects.toMatchObject({ code: 'config', message: `${path} is not valid UTF-8 text` });
  });
});

describe('writeFileAtomic', () => {
  it('creates a 0600 file even under a permissive umask', async () => {
    const path = join(home, 'new.yaml');
    const saved = process.umask(0o000);
    try {
      await writeFileAtomic(path, 'a: 1\n');
    } finally {
      process.umask(saved);
    }
    expect(await readFile(path, 'utf8')).toBe('a: 1\n');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    expect(await readdir(home)).toEqual(['new.yaml']);
  });

  it('replaces a file (new inode, mode reset to 0600) and leaves no temp file', async () => {
    const path = await privateFile('f.yaml', 'old\n');
    await chmod(path, 0o644);
    const before = await stat(path);
    await writeFileAtomic(path, 'new\n');
    const after = await stat(path);
    expect(await readFile(path, 'utf8')).toBe('new\n');
    expect(after.mode & 0o777).toBe(0o600);
    expect(after.ino).not.toBe(before.ino);
    expect(await readdir(home)).toEqual(['f.yaml']);
  });

  it('replaces a symbolic link itself, never writing through it', async () => {
    const target = await privateFile('target.yaml', 'target\n');
    const link = join(home, 'link.yaml');
    await symlink(target, link);
    await writeFileAtomic(link, 'new\n');
    expect(await readFile(target, 'utf8')).toBe('target\n');
    expect(await readSecureFile(link)).toBe('new\n');
  });

  it('on failure leaves the target as it was and removes the temp file', async () => {
    const path = await privateFile('f.yaml', 'old\n');
    const veto = new Error('veto');
    await expect(
      writeFileAtomic(path, 'new\n', 0o600, {
        beforeRename: () => {
          throw veto;
        },
      }),
    ).rejects.toMatchObject({ code: 'config', cause: veto });
    expect(await readFile(path, 'utf8')).toBe('old\n');
    expect(await readdir(home)).toEqual(['f.yaml']);

    // The target is a non-empty directory: the rename fails.
    const dir = join(home, 'd');
    await mkdir(join(dir, 'inner'), { recursive: true });
    await expect(writeFileAtomic(dir, 'x')).rejects.toMatchObject({ code: 'config' });
    expect((await readdir(home)).sort()).toEqual(['d', 'f.yaml']);
  });
});

describe('removeTempFiles', () => {
  it('removes the leftovers of one file only', async () => {
    await privateFile('.p.yaml.tmp-123-abc', 'half');
    await privateFile('.p.yaml.tmp-456-def', 'half');
    await privateFile('.q.yaml.tmp-1-a', 'other file');
    await privateFile('p.yaml', 'kept');
    expect(await removeTempFiles(join(home, 'p.yaml'))).toBe(2);
    expect((await readdir(home)).sort()).toEqual(['.q.yaml.tmp-1-a', 'p.yaml']);
  });
});
