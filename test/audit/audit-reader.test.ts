import { appendFileSync } from 'node:fs';
import { appendFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { followAudit, parseSince, readAudit } from '../../src/audit/audit-reader.js';
import type { AuditReadProblem } from '../../src/audit/audit-reader.js';
import { createOutcomeRecord } from '../../src/audit/audit-record.js';
import type { AuditDecisionRecord, AuditRecord } from '../../src/audit/audit-record.js';
import { createAuditSink } from '../../src/audit/audit-sink.js';
import { CmdopError } from '../../src/errors.js';
import { makeRecord, makeTempDir, waitFor } from './audit-fixtures.js';

let dir: string;
let cleanup: () => Promise<void>;

beforeEach(async () => {
  ({ dir, cleanup } = await makeTempDir());
});

afterEach(async () => {
  await cleanup();
});

async function writeRecords(records: readonly AuditRecord[], options: { maxBytes?: number; maxFiles?: number } = {}): Promise<void> {
  const sink = await createAuditSink({ dir, ...options });
  for (const record of records) await sink.append(record);
  await sink.close();
}

const ids = (records: readonly AuditRecord[]): string[] => records.map((r) => `${r.call_id}/${r.event}`);

describe('readAudit', () => {
  it('reads rotated files oldest first, then the current file', async () => {
    const records = Array.from({ length: 50 }, (_, i) => makeRecord(i));
    await writeRecords(records, { maxBytes: 4096, maxFiles: 20 });
    const { records: read, problems } = await readAudit({ dir });
    expect(problems).toEqual([]);
    expect(read).toEqual(records);
  });

  it('returns nothing for a directory that does not exist yet', async () => {
    await expect(readAudit({ dir: path.join(dir, 'missing') })).resolves.toEqual({ records: [], problems: [] });
  });

  it('skips and reports a torn last line, and reads the rest', async () => {
    const records = Array.from({ length: 5 }, (_, i) => makeRecord(i));
    await writeRecords(records);
    const torn = JSON.stringify(makeRecord(5)).slice(0, 57); // a crash mid-write
    await appendFile(path.join(dir, 'audit.log'), torn);
    const { records: read, problems } = await readAudit({ dir });
    expect(read).toEqual(records);
    expect(problems).toEqual([{ file: path.join(dir, 'audit.log'), line: 6, kind: 'torn_last_line', text: torn }]);
  });

  it('reads a complete last line that only lacks its newline', async () => {
    const records = [makeRecord(0), makeRecord(1)];
    await writeFile(path.join(dir, 'audit.log'), `${JSON.stringify(records[0])}\n${JSON.stringify(records[1])}`, { mode: 0o600 });
    expect(await readAudit({ dir })).toEqual({ records, problems: [] });
  });

  it('skips and reports invalid lines in the middle', async () => {
    const good = [makeRecord(0), makeRecord(1), makeRecord(2)];
    const notARecord = JSON.stringify({ ...makeRecord(9), decision: 'perhaps' });
    const text = [JSON.stringify(good[0]), 'not json at all', JSON.stringify(good[1]), notARecord, JSON.stringify(good[2]), ''].join('\n');
    await writeFile(path.join(dir, 'audit.log'), text, { mode: 0o600 });
    const { records, problems } = await readAudit({ dir });
    expect(records).toEqual(good);
    expect(problems.map((p) => [p.line, p.kind])).toEqual([
      [2, 'invalid_line'],
      [4, 'invalid_line'],
    ]);
    expect(problems[0]?.text).toBe('not json at all');
  });

  describe('filters', () => {
    const records: AuditDecisionRecord[] = [
      makeRecord(0, { tool: 'read_file', decision: 'allow' }),
      makeRecord(10, { tool: 'execute_command', decision: 'deny' }),
      makeRecord(20, { tool: 'execute_command', decision: 'ask_allowed' }),
      makeRecord(30, { tool: 'write_file', decision: 'ask_timeout' }),
      makeRecord(40, { tool: 'execute_command', decision: 'allow' }),
    ];
    const withOutcomes: AuditRecord[] = records.flatMap((r) =>
      r.decision === 'allow' || r.decision === 'ask_allowed'
        ? [r, createOutcomeRecord(r, { status: 'ok', exit_code: 0, duration_ms: 5 }, new Date(Date.parse(r.ts) + 500))]
        : [r],
    );

    beforeEach(async () => {
      await writeRecords(withOutcomes);
    });

    it.each([
      ['no filter', {}, withOutcomes],
      ['tool', { tool: 'execute_command' }, withOutcomes.filter((r) => r.tool === 'execute_command')],
      ['decision', { decision: 'allow' }, withOutcomes.filter((r) => r.decision === 'allow')],
      ['event', { event: 'outcome' as const }, withOutcomes.filter((r) => r.event === 'outcome')],
      ['since', { since: new Date(Date.UTC(2025, 0, 31, 12, 0, 20)) }, withOutcomes.filter((r) => Date.parse(r.ts) >= Date.UTC(2025, 0, 31, 12, 0, 20))],
      ['last', { last: 2 }, withOutcomes.slice(-2)],
      ['last after the other filters', { tool: 'execute_command', event: 'decision' as const, last: 2 }, [records[2], records[4]]],
      ['last 0', { last: 0 }, []],
      ['last more than there are', { decision: 'deny', last: 10 }, [records[1]]],
    ])('%s', async (_name, filter, expected) => {
      const { records: read } = await readAudit({ dir, filter });
      expect(ids(read)).toEqual(ids(expected as AuditRecord[]));
    });

    it('rejects an unknown decision and a bad count with invalid_input', async () => {
      await expect(readAudit({ dir, filter: { decision: 'maybe' } })).rejects.toMatchObject({ code: 'invalid_input', message: expect.stringContaining("'maybe'") as unknown });
      await expect(readAudit({ dir, filter: { last: -1 } })).rejects.toMatchObject({ code: 'invalid_input' });
    });
  });
});

describe('parseSince', () => {
  const now = new Date('2025-01-31T12:00:00.000Z');

  it.each([
    ['30s', '2025-01-31T11:59:30.000Z'],
    ['15m', '2025-01-31T11:45:00.000Z'],
    ['1h', '2025-01-31T11:00:00.000Z'],
    ['24h', '2025-01-30T12:00:00.000Z'],
    ['7d', '2025-01-24T12:00:00.000Z'],
    [' 2h ', '2025-01-31T10:00:00.000Z'],
    ['2025-01-30T08:15:00Z', '2025-01-30T08:15:00.000Z'],
    ['2025-01-30T08:15:00.250Z', '2025-01-30T08:15:00.250Z'],
    ['2025-01-30T08:15:00+02:00', '2025-01-30T06:15:00.000Z'],
    ['2025-01-30', '2025-01-30T00:00:00.000Z'],
  ])('accepts %s', (text, expected) => {
    expect(parseSince(text, now).toISOString()).toBe(expected);
  });

  it.each(['', 'h', '1', '0s', '-1h', '1.5h', '1w', '1h30m', '2H', 'yesterday', '2025-02-30', '2025-13-01', '2025-01-31T25:00:00Z', '31/01/2025', '1e3s'])(
    'rejects %j with a clear invalid_input error',
    (text) => {
      let caught: unknown;
      try {
        parseSince(text, now);
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(CmdopError);
      expect((caught as CmdopError).code).toBe('invalid_input');
      expect((caught as CmdopError).message).toContain(`'${text}'`);
      expect((caught as CmdopError).message).toMatch(/30s, 15m, 1h, 24h or 7d.*ISO timestamp/);
    },
  );
});

describe('followAudit', () => {
  it('delivers records appended after it started, in order, across rotations', async () => {
    const before = Array.from({ length: 5 }, (_, i) => makeRecord(i));
    await writeRecords(before, { maxBytes: 4096, maxFiles: 20 });

    const seen: AuditRecord[] = [];
    const problems: AuditReadProblem[] = [];
    const controller = new AbortController();
    const following = followAudit({ dir, signal: controller.signal, pollMs: 10, onRecord: (r) => seen.push(r), onProblem: (p) => problems.push(p) });

    const sink = await createAuditSink({ dir, maxBytes: 4096, maxFiles: 20 });
    const after = Array.from({ length: 60 }, (_, i) => makeRecord(100 + i));
    // Append in small groups with pauses, so the follower sees the file grow and rotate under it.
    for (let i = 0; i < after.length; i += 6) {
      await Promise.all(after.slice(i, i + 6).map((r) => sink.append(r)));
      await new Promise((resolve) => setTimeout(resolve, 15));
    }
    expect(sink.stats().rotations).toBeGreaterThanOrEqual(5);
    await sink.close();

    await waitFor(() => seen.length >= after.length);
    controller.abort();
    await following;
    expect(ids(seen)).toEqual(ids(after));
    expect(problems).toEqual([]);
  });

  it('survives a rotation it did not watch happen between polls', async () => {
    const seen: AuditRecord[] = [];
    const controller = new AbortController();
    const sink = await createAuditSink({ dir, maxBytes: 2048, maxFiles: 20 });
    await sink.append(makeRecord(0));
    const following = followAudit({ dir, signal: controller.signal, pollMs: 200, onRecord: (r) => seen.push(r) });
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Several rotations within one poll interval.
    const after = Array.from({ length: 12 }, (_, i) => makeRecord(1 + i));
    for (const record of after) await sink.append(record);
    await sink.close();
    await waitFor(() => seen.length >= after.length);
    await new Promise((resolve) => setTimeout(resolve, 250)); // nothing more arrives
    controller.abort();
    await following;
    // Files rotated away entirely while the follower slept are still delivered, in order.
    expect(sink.stats().rotations).toBeGreaterThanOrEqual(2);
    expect(ids(seen)).toEqual(ids(after));
  });

  it('waits for a log that does not exist yet, and applies the filter', async () => {
    const seen: AuditRecord[] = [];
    const controller = new AbortController();
    const following = followAudit({ dir, signal: controller.signal, pollMs: 10, filter: { decision: 'deny' }, onRecord: (r) => seen.push(r) });
    await new Promise((resolve) => setTimeout(resolve, 30));
    const records = [makeRecord(0), makeRecord(1, { decision: 'deny' }), makeRecord(2), makeRecord(3, { decision: 'deny' })];
    await writeRecords(records);
    await waitFor(() => seen.length >= 2);
    controller.abort();
    await following;
    expect(ids(seen)).toEqual(ids([records[1]!, records[3]!]));
  });

  it('starts over when the file is truncated in place', async () => {
    await writeRecords([makeRecord(0), makeRecord(1)]);
    const seen: AuditRecord[] = [];
    const controller = new AbortController();
    const following = followAudit({ dir, signal: controller.signal, pollMs: 10, onRecord: (r) => seen.push(r) });
    await new Promise((resolve) => setTimeout(resolve, 30));
    await writeFile(path.join(dir, 'audit.log'), `${JSON.stringify(makeRecord(2))}\n`);
    await waitFor(() => seen.length >= 1);
    controller.abort();
    await following;
    expect(ids(seen)).toEqual(ids([makeRecord(2)]));
  });

  it('with a backlog, delivers the last N records across rotated files first, then what is appended, each once', async () => {
    const before = Array.from({ length: 40 }, (_, i) => makeRecord(i, i % 3 === 0 ? { decision: 'deny' } : {}));
    await writeRecords(before, { maxBytes: 4096, maxFiles: 20 });
    const seen: AuditRecord[] = [];
    const controller = new AbortController();
    const following = followAudit({ dir, signal: controller.signal, pollMs: 10, backlog: 6, filter: { decision: 'deny' }, onRecord: (r) => seen.push(r) });
    // Appended while the follower opens the log, before it reads: part of the backlog, and only there.
    appendFileSync(path.join(dir, 'audit.log'), `${JSON.stringify(makeRecord(40, { decision: 'deny' }))}\n`);
    await waitFor(() => seen.length >= 6);
    const sink = await createAuditSink({ dir, maxBytes: 4096, maxFiles: 20 });
    const after = [makeRecord(41, { decision: 'deny' }), makeRecord(42), makeRecord(43, { decision: 'deny' })];
    for (const record of after) await sink.append(record);
    await sink.close();
    await waitFor(() => seen.some((r) => r.call_id === 'call-000043'));
    await new Promise((resolve) => setTimeout(resolve, 50)); // nothing more arrives
    controller.abort();
    await following;
    const denies = [...before, makeRecord(40, { decision: 'deny' }), ...after].filter((r) => r.decision === 'deny');
    expect(ids(seen)).toEqual(ids(denies.slice(denies.length - 8)));
  });

  it('with a backlog, holds back a half-written last line and delivers it once it is finished', async () => {
    const records = [makeRecord(0), makeRecord(1), makeRecord(2)];
    const line = `${JSON.stringify(records[2])}\n`;
    await writeFile(path.join(dir, 'audit.log'), `${JSON.stringify(records[0])}\n${JSON.stringify(records[1])}\n${line.slice(0, 40)}`, { mode: 0o600 });
    const seen: AuditRecord[] = [];
    const problems: AuditReadProblem[] = [];
    const controller = new AbortController();
    const following = followAudit({ dir, signal: controller.signal, pollMs: 10, backlog: 20, onRecord: (r) => seen.push(r), onProblem: (p) => problems.push(p) });
    await waitFor(() => seen.length >= 2);
    await appendFile(path.join(dir, 'audit.log'), line.slice(40));
    await waitFor(() => seen.length >= 3);
    controller.abort();
    await following;
    expect(ids(seen)).toEqual(ids(records));
    expect(problems).toEqual([]);
  });

  it('refuses a backlog that is not a whole number of records', async () => {
    const controller = new AbortController();
    await expect(followAudit({ dir, signal: controller.signal, backlog: -1, onRecord: () => undefined })).rejects.toMatchObject({ code: 'invalid_input' });
  });

  it('resolves promptly when aborted, even with a long poll interval', async () => {
    const controller = new AbortController();
    const following = followAudit({ dir, signal: controller.signal, pollMs: 60_000, onRecord: () => undefined });
    await new Promise((resolve) => setTimeout(resolve, 20));
    const started = Date.now();
    controller.abort();
    await following;
    expect(Date.now() - started).toBeLessThan(1000);
    await rm(dir, { recursive: true, force: true });
  });
});
