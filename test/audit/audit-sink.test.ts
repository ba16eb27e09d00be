import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readAudit } from '../../src/audit/audit-reader.js';
import { createAuditSink } from '../../src/audit/audit-sink.js';
import type { AuditSink } from '../../src/audit/audit-sink.js';
import { CmdopError } from '../../src/errors.js';
import { makeRecord, makeTempDir } from './audit-fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;
const sinks: AuditSink[] = [];

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
});

afterEach(async () => {
  await Promise.allSettled(sinks.splice(0).map((sink) => sink.close()));
  await cleanup();
});

async function open(options: Partial<Parameters<typeof createAuditSink>[0]> = {}): Promise<AuditSink> {
  const sink = await createAuditSink({ dir, ...options });
  sinks.push(sink);
  return sink;
}

/** Every line of every audit file in `logDir`, oldest file first. */
async function allLines(logDir: string, fileName = 'audit.log'): Promise<string[]> {
  const names = (await readdir(logDir)).filter((name) => name === fileName || name.startsWith(`${fileName}.`));
  const index = (name: string): number => (name === fileName ? 0 : Number(name.slice(fileName.length + 1)));
  names.sort((a, b) => index(b) - index(a));
  const lines: string[] = [];
  for (const name of names) {
    const text = await readFile(path.join(logDir, name), 'utf8');
    lines.push(...text.split('\n').filter((line) => line !== ''));
  }
  return lines;
}

function expectWriteFailure(reason: unknown): void {
  expect(reason).toBeInstanceOf(CmdopError);
  const error = reason as CmdopError;
  expect(error.code).toBe('internal');
  expect(error.message).toMatch(/audit log could not be written at .*audit\.log/);
  expect(error.message).toMatch(/the tool was not run/);
}

describe('createAuditSink / append', () => {
  it('resolves only once the line is in the file', async () => {
    const sink = await open();
    for (let i = 0; i < 20; i++) {
      const record = makeRecord(i);
      await sink.append(record);
      // Read synchronously right after the await: the line must already be there, whole.
      const lines = readFileSync(sink.path, 'utf8').split('\n');
      expect(lines.at(-1)).toBe('');
      expect(JSON.parse(lines.at(-2)!)).toEqual(record);
    }
    expect(sink.stats().lines).toBe(20);
  });

  it('creates the directory 0700 and the files 0600, rotated ones included', async () => {
    const logDir = path.join(dir, 'home', 'logs');
    const sink = await createAuditSink({ dir: logDir, maxBytes: 2048, maxFiles: 3 });
    sinks.push(sink);
    await Promise.all(Array.from({ length: 20 }, (_, i) => sink.append(makeRecord(i))));
    expect(sink.stats().rotations).toBeGreaterThan(0);
    expect((await stat(logDir)).mode & 0o777).toBe(0o700);
    for (const name of await readdir(logDir)) {
      expect({ name, mode: (await stat(path.join(logDir, name))).mode & 0o777 }).toEqual({ name, mode: 0o600 });
    }
  });

  it('loses no line across several rotations, and never interleaves concurrent lines', async () => {
    // About 4.5 files' worth: at least 3 rotations, at most 4, so nothing is dropped.
    const lineBytes = JSON.stringify(makeRecord(0)).length + 1;
    const count = Math.floor((4.5 * 4096) / lineBytes);
    const sink = await open({ maxBytes: 4096, maxFiles: 5 });
    const records = Array.from({ length: count }, (_, i) => makeRecord(i));
    await Promise.all(records.map((record) => sink.append(record)));
    await sink.close();

    const { rotations } = sink.stats();
    expect(rotations).toBeGreaterThanOrEqual(3);
    expect(rotations).toBeLessThanOrEqual(5); // so no file was dropped
    const lines = await allLines(dir);
    expect(lines).toHaveLength(count);
    expect(lines.map((line) => (JSON.parse(line) as { call_id: string }).call_id)).toEqual(records.map((r) => r.call_id));
    for (const name of (await readdir(dir)).filter((n) => n !== 'audit.log')) {
      expect((await stat(path.join(dir, name))).size).toBeGreaterThanOrEqual(4096);
    }
  });

  it('keeps every line of thousands of concurrent appends in order', async () => {
    const count = 5000;
    const sink = await open({ maxBytes: 64 * 1024, maxFiles: 50 });
    await Promise.all(Array.from({ length: count }, (_, i) => sink.append(makeRecord(i))));
    expect(sink.stats().rotations).toBeGreaterThan(10);
    const { records, problems } = await readAudit({ dir });
    expect(problems).toEqual([]);
    expect(records.map((r) => r.call_id)).toEqual(Array.from({ length: count }, (_, i) => makeRecord(i).call_id));
  });

  it('drops only the oldest files beyond maxFiles', async () => {
    const sink = await open({ maxBytes: 1024, maxFiles: 2 });
    for (let i = 0; i < 40; i++) await sink.append(makeRecord(i));
    const names = (await readdir(dir)).sort();
    expect(names).toEqual(['audit.log', 'audit.log.1', 'audit.log.2']);
    const lines = await allLines(dir);
    expect((JSON.parse(lines.at(-1)!) as { call_id: string }).call_id).toBe(makeRecord(39).call_id);
  });

  it('appends to an existing log and ends a torn last line left by a crash', async () => {
    const first = makeRecord(1);
    await writeFile(path.join(dir, 'audit.log'), `${JSON.stringify(first)}\n{"ts":"2025-01-31T12:`, { mode: 0o600 });
    const sink = await open();
    const second = makeRecord(2);
    await sink.append(second);
    const { records, problems } = await readAudit({ dir });
    expect(records).toEqual([first, second]);
    expect(problems).toEqual([{ file: path.join(dir, 'audit.log'), line: 2, kind: 'invalid_line', text: '{"ts":"2025-01-31T12:' }]);
  });

  it('close flushes pending appends, then refuses new ones', async () => {
    const sink = await open();
    const pending = Array.from({ length: 100 }, (_, i) => sink.append(makeRecord(i)));
    await sink.close();
    await Promise.all(pending);
    expect(await allLines(dir)).toHaveLength(100);
    await expect(sink.append(makeRecord(101))).rejects.toMatchObject({ code: 'internal', message: expect.stringMatching(/closed.*tool was not run/) as unknown });
  });

  it('rejects bad options with a config error', async () => {
    await expect(createAuditSink({ dir, maxBytes: 0 })).rejects.toMatchObject({ code: 'config' });
    await expect(createAuditSink({ dir, maxFiles: 1.5 })).rejects.toMatchObject({ code: 'config' });
    await expect(createAuditSink({ dir, fileName: '../audit.log' })).rejects.toMatchObject({ code: 'config' });
  });
});

describe('fail closed', () => {
  // Tests run as root, and root ignores permission bits, so chmod cannot make a directory
  // unwritable. Each case below fails for root too: a path under a regular file (ENOTDIR),
  // the log's own path taken by a directory (EISDIR), a rotation blocked by a directory.

  it('rejects creating a sink whose directory lies under a regular file (ENOTDIR)', async () => {
    const blocker = path.join(dir, 'not-a-dir');
    await writeFile(blocker, 'x');
    const error: unknown = await createAuditSink({ dir: path.join(blocker, 'logs') }).catch((e: unknown) => e);
    expectWriteFailure(error);
  });

  it('rejects creating a sink when the log path is a directory', async () => {
    await mkdir(path.join(dir, 'audit.log'));
    const error: unknown = await createAuditSink({ dir }).catch((e: unknown) => e);
    expectWriteFailure(error);
  });

  it('rejects the append whose rotation fails, and every later one: the sink stays failed', async () => {
    // With maxFiles 1, rotation renames audit.log onto audit.log.1; a non-empty directory
    // there makes the rename fail (EISDIR) whatever the user's privileges.
    await mkdir(path.join(dir, 'audit.log.1'));
    await writeFile(path.join(dir, 'audit.log.1', 'keep'), 'x');
    const sink = await open({ maxBytes: 1000, maxFiles: 1 });
    const results = [];
    for (let i = 0; i < 10; i++) results.push(await sink.append(makeRecord(i)).then(() => 'ok', (e: unknown) => e));
    const firstFailure = results.findIndex((r) => r !== 'ok');
    expect(firstFailure).toBeGreaterThan(0);
    for (const failure of results.slice(firstFailure)) expectWriteFailure(failure);
    // Removing the cause does not revive the sink: a failed sink never silently drops lines.
    await chmod(path.join(dir, 'audit.log.1'), 0o700);
    expectWriteFailure(await sink.append(makeRecord(99)).catch((e: unknown) => e));
  });

  it('refuses an existing log that other users can read', async () => {
    await writeFile(path.join(dir, 'audit.log'), '', { mode: 0o644 });
    await chmod(path.join(dir, 'audit.log'), 0o644);
    await expect(createAuditSink({ dir })).rejects.toMatchObject({ code: 'config', hint: expect.stringContaining('chmod 600') as unknown });
  });

  it('refuses a directory that other users can write to', async () => {
    const shared = path.join(dir, 'shared');
    await mkdir(shared);
    await chmod(shared, 0o777);
    await expect(createAuditSink({ dir: shared })).rejects.toMatchObject({ code: 'config' });
  });

  const canMount = ((): boolean => {
    if (process.platform !== 'linux' || process.getuid?.() !== 0) return false;
    try {
      execFileSync('mount', ['--version'], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  })();

  // CI runs as root on a machine that can mount tmpfs, so there this test must run: it is
  // skipped only outside CI on a machine that cannot make a small file system.
  const inCi = process.env.CI === 'true';
  it.skipIf(!canMount && !inCi)('on a full disk, rejects the lines it could not write and never resolves a partial one', async (context) => {
    const small = path.join(dir, 'small');
    await mkdir(small, { mode: 0o700 });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', small], { stdio: 'ignore' });
    } catch (error) {
      if (inCi) throw new Error(`CI must be able to mount a small tmpfs for the full-disk test (root with CAP_SYS_ADMIN): ${String(error)}`);
      context.skip(); // no CAP_SYS_ADMIN here
      return;
    }
    try {
      // Small maxBytes keeps the write batches small, so some lines fit before the disk is full.
      const sink = await createAuditSink({ dir: small, maxBytes: 16 * 1024, maxFiles: 5 });
      const records = Array.from({ length: 1000 }, (_, i) => makeRecord(i));
      const settled = await Promise.allSettled(records.map((record) => sink.append(record)));
      const resolved = records.filter((_, i) => settled[i]?.status === 'fulfilled').map((r) => r.call_id);
      const rejected = settled.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
      expect(resolved.length).toBeGreaterThan(10);
      expect(rejected.length).toBeGreaterThan(0);
      for (const { reason } of rejected) expectWriteFailure(reason);
      // Every append that resolved has its complete, valid line on disk.
      const { records: onDisk } = await readAudit({ dir: small });
      const written = new Set(onDisk.map((r) => r.call_id));
      expect(resolved.filter((id) => !written.has(id))).toEqual([]);
      expectWriteFailure(await sink.append(makeRecord(5000)).catch((e: unknown) => e));
      await sink.close();
    } finally {
      execFileSync('umount', [small], { stdio: 'ignore' });
    }
  });
});
