/**
 * Audit sink throughput with rotation on (DESIGN.md §8: speed targets live in a benchmark).
 * Goal: at least 50 000 lines/s with realistic records, 10 MB rotation and 5 backups.
 */

import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createAuditRecord, createOutcomeRecord } from '../src/audit/audit-record.js';
import type { AuditRecord } from '../src/audit/audit-record.js';
import { createAuditSink } from '../src/audit/audit-sink.js';

/** One benchmark measurement, printed as one JSON line by bench/run.ts. */
export interface BenchResult {
  readonly name: string;
  readonly [key: string]: number | string;
}

const TOOLS = ['execute_command', 'read_file', 'write_file', 'list_dir', 'connect'] as const;
const DECISIONS = ['allow', 'allow', 'allow', 'deny', 'ask_allowed'] as const;

/** A realistic mix: decision lines and outcome lines, varied targets, a redacted secret now and then. */
function makeRecords(count: number): AuditRecord[] {
  const records: AuditRecord[] = [];
  const start = Date.now();
  for (let i = 0; records.length < count; i++) {
    const tool = TOOLS[i % TOOLS.length] ?? 'execute_command';
    const target =
      tool === 'execute_command'
        ? i % 10 === 0
          ? `curl -H "Authorization: Bearer tok${i}abcdefgh" https://api.example.com/v1/items/${i}`
          : `git -C /srv/app/service-${i % 97} log --oneline -n ${i % 50}`
        : tool === 'connect'
          ? `db-${i % 13}.internal`
          : `/srv/app/service-${i % 97}/config/settings-${i % 31}.json`;
    const decision = createAuditRecord({
      decision: DECISIONS[i % DECISIONS.length] ?? 'allow',
      tool,
      operation: tool === 'connect' ? 'exec' : null,
      target,
      mode: 'default',
      source: i % 4 === 0 ? 'mode' : 'rule',
      rule: i % 4 === 0 ? null : `${tool}(/srv/app/**)`,
      reason: i % 4 === 0 ? 'no rule matched; default mode allows read tools' : `matched allow rule ${tool}(/srv/app/**)`,
      ask_ms: i % 5 === 4 ? 1200 + (i % 300) : 0,
      hostname: `host-${i % 7}`,
      user: i % 3 === 0 ? 'user:alice@example.com' : `host:host-${i % 7}`,
      input: { target, seq: i },
      now: new Date(start + i),
    });
    records.push(decision);
    if (records.length < count && decision.decision !== 'deny') {
      records.push(createOutcomeRecord(decision, { status: 'ok', exit_code: 0, duration_ms: 3 + (i % 40), truncated: false }, new Date(start + i + 1)));
    }
  }
  return records;
}

interface RunOptions {
  readonly name: string;
  readonly lines: number;
  /** Appends in flight at once; 1 means each append is awaited before the next. */
  readonly concurrency: number;
  readonly maxBytes: number;
  readonly maxFiles: number;
}

async function run(options: RunOptions): Promise<BenchResult> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cmdop-audit-bench-'));
  try {
    const records = makeRecords(options.lines);
    const sink = await createAuditSink({ dir, maxBytes: options.maxBytes, maxFiles: options.maxFiles });
    const started = performance.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < records.length) {
        const record = records[next++];
        if (record !== undefined) await sink.append(record);
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
    await sink.close();
    const seconds = (performance.now() - started) / 1000;
    const stats = sink.stats();
    const files = await readdir(dir);
    let bytesOnDisk = 0;
    for (const file of files) bytesOnDisk += (await stat(path.join(dir, file))).size;
    return {
      name: options.name,
      lines: stats.lines,
      concurrency: options.concurrency,
      seconds: Number(seconds.toFixed(3)),
      lines_per_second: Math.round(stats.lines / seconds),
      mb_per_second: Number((stats.bytes / 1024 / 1024 / seconds).toFixed(1)),
      bytes: stats.bytes,
      avg_line_bytes: Math.round(stats.bytes / stats.lines),
      rotations: stats.rotations,
      files_kept: files.length,
      bytes_on_disk: bytesOnDisk,
      max_bytes: options.maxBytes,
      max_files: options.maxFiles,
      goal_lines_per_second: 50_000,
    };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What building records costs: redaction of every free-text field plus the input digest. */
function benchRecordCreation(count: number): BenchResult {
  makeRecords(1000); // warm up
  const started = performance.now();
  const records = makeRecords(count);
  const seconds = (performance.now() - started) / 1000;
  return {
    name: 'audit_record_create',
    records: records.length,
    seconds: Number(seconds.toFixed(3)),
    records_per_second: Math.round(records.length / seconds),
    micros_per_record: Number(((seconds * 1e6) / records.length).toFixed(2)),
  };
}

/** Measures record creation, and sink throughput with rotation on, concurrent and one-at-a-time. */
export async function benchAudit(): Promise<BenchResult[]> {
  const rotating = { maxBytes: 10 * 1024 * 1024, maxFiles: 5 };
  return [
    benchRecordCreation(100_000),
    // Many calls in flight, as in a busy daemon: appends are grouped into few writes.
    await run({ name: 'audit_sink_concurrent', lines: 200_000, concurrency: 256, ...rotating }),
    // Each call waits for its line before the next starts: the latency floor of one append.
    await run({ name: 'audit_sink_serial', lines: 20_000, concurrency: 1, ...rotating }),
    // Small files, so rotation itself dominates.
    await run({ name: 'audit_sink_small_files', lines: 100_000, concurrency: 256, maxBytes: 256 * 1024, maxFiles: 5 }),
  ];
}
