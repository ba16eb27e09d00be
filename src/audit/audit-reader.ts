/**
 * Reads the rotated audit log back (DESIGN.md §5.1, §7 `cmdop permissions audit`): oldest
 * rotated file first, the current file last; a torn last line (a crash mid-write) and any
 * other invalid line are skipped and reported, never fatal.
 */

import { readdir, readFile, open, stat } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CmdopError, systemErrorCode } from '../errors.js';
import { AUDIT_DECISIONS, AUDIT_EVENTS, auditRecordSchema } from './audit-record.js';
import type { AuditEvent, AuditRecord } from './audit-record.js';
import { DEFAULT_AUDIT_FILE } from './audit-sink.js';

/** Which records to keep. */
export interface AuditFilter {
  /** Keep records at or after this time. */
  readonly since?: Date | undefined;
  /** Keep records of this tool only. */
  readonly tool?: string | undefined;
  /** Keep records with this decision only (`allow`, `deny`, `ask_allowed`, `ask_denied`, `ask_timeout`). */
  readonly decision?: string | undefined;
  /** Keep decision lines or outcome lines only. */
  readonly event?: AuditEvent | undefined;
  /** Keep the last N records after the other filters. */
  readonly last?: number | undefined;
}

/** Where the audit log is and what to read from it. */
export interface ReadAuditOptions {
  readonly dir: string;
  /** Defaults to `audit.log`. */
  readonly fileName?: string | undefined;
  readonly filter?: AuditFilter | undefined;
}

/** A line that was skipped. */
export interface AuditReadProblem {
  /** The file it was in. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  /** `torn_last_line`: a final line without its newline that is not valid (a crash mid-write). */
  readonly kind: 'torn_last_line' | 'invalid_line';
  /** The start of the line, for a human to look at. */
  readonly text?: string;
}

/** The records that passed the filter, and the lines that could not be read. */
export interface AuditReadResult {
  readonly records: AuditRecord[];
  readonly problems: AuditReadProblem[];
}

/** Options for following the audit log as it grows. */
export interface FollowAuditOptions extends ReadAuditOptions {
  /** Stops following; `followAudit` then resolves. */
  readonly signal: AbortSignal;
  /** Called with each new record that passes the filter (`filter.last` is ignored). */
  readonly onRecord: (record: AuditRecord) => void;
  /** Called with each line that could not be read. */
  readonly onProblem?: ((problem: AuditReadProblem) => void) | undefined;
  /** How often to look for new lines; defaults to 250 ms. */
  readonly pollMs?: number | undefined;
  /**
   * Delivers the last N records already in the log (that pass the filter) first; defaults to 0,
   * only what is appended after the call. They come from the same open file the following goes
   * on reading, so a record written meanwhile is delivered once, neither lost nor twice.
   */
  readonly backlog?: number | undefined;
}

const PROBLEM_TEXT_MAX = 200;

/** Reads every audit file, oldest first, and returns the records that pass `filter`. */
export async function readAudit(options: ReadAuditOptions): Promise<AuditReadResult> {
  const fileName = options.fileName ?? DEFAULT_AUDIT_FILE;
  const keep = compileFilter(options.filter);
  const last = checkLast(options.filter?.last);
  const records: AuditRecord[] = [];
  const problems: AuditReadProblem[] = [];
  for (const file of await auditFiles(options.dir, fileName)) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      // Rotation can move or drop a file between listing and reading it.
      if (systemErrorCode(error) === 'ENOENT') continue;
      throw readError(file, error);
    }
    parseLines(text, file, 1, true, (record) => {
      if (keep(record)) records.push(record);
    }, (problem) => problems.push(problem));
  }
  return { records: last === undefined ? records : records.slice(records.length - Math.min(last, records.length)), problems };
}

/**
 * Turns `--since` text into a time: `30s`, `15m`, `1h`, `24h`, `7d` before `now`, or an ISO
 * timestamp (`2025-01-31`, `2025-01-31T12:00:00Z`).
 */
export function parseSince(text: string, now: Date): Date {
  const trimmed = text.trim();
  const relative = /^(\d{1,9})([smhd])$/.exec(trimmed);
  if (relative !== null) {
    const amount = Number(relative[1]);
    const unit = relative[2] as 's' | 'm' | 'h' | 'd';
    const unitMs = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[unit];
    if (amount > 0) return new Date(now.getTime() - amount * unitMs);
  } else {
    const iso = ISO_TIME.exec(trimmed);
    if (iso !== null && isRealTime(iso)) {
      const parsed = new Date(trimmed);
      if (!Number.isNaN(parsed.getTime())) return parsed;
    }
  }
  throw new CmdopError('invalid_input', `Invalid --since value '${text}': expected a positive duration such as 30s, 15m, 1h, 24h or 7d, or an ISO timestamp such as 2025-01-31T12:00:00Z.`);
}

/**
 * Calls `onRecord` for each record appended after the call, until `signal` aborts. Survives
 * rotation: it finishes the rotated file and any rotated since, then continues with the new one.
 */
export async function followAudit(options: FollowAuditOptions): Promise<void> {
  const fileName = options.fileName ?? DEFAULT_AUDIT_FILE;
  const filePath = path.join(options.dir, fileName);
  const pollMs = options.pollMs ?? 250;
  if (!Number.isFinite(pollMs) || pollMs <= 0) {
    throw new CmdopError('invalid_input', `Invalid pollMs ${String(pollMs)}: it must be a positive number of milliseconds.`);
  }
  const keep = compileFilter(options.filter);
  const backlog = checkLast(options.backlog) ?? 0;
  const { signal, onRecord } = options;
  const onProblem = options.onProblem ?? ((): void => undefined);

  let current: OpenFile | undefined =
    backlog === 0 ? await openAt(filePath, 'end') : await openWithBacklog(options.dir, fileName, backlog, keep, onRecord, onProblem);
  try {
    while (!signal.aborted) {
      current ??= await openAt(filePath, 'start');
      if (current !== undefined) {
        await drain(current, keep, onRecord, onProblem);
        if (await isReplaced(filePath, current)) {
          // Renamed away by a rotation, the old file is complete: finish it, then read any
          // rotated files newer than it (several rotations between two polls), then the new file.
          await drain(current, keep, onRecord, onProblem);
          flushTornTail(current, onProblem);
          const finished = current;
          current = undefined;
          await finished.handle.close();
          const { next, skipped } = await filesAfter(filePath, finished);
          for (const file of skipped) {
            try {
              await drain(file, keep, onRecord, onProblem);
              flushTornTail(file, onProblem);
            } finally {
              await file.handle.close();
            }
          }
          current = next;
          if (current !== undefined) await drain(current, keep, onRecord, onProblem);
        }
      }
      try {
        await sleep(pollMs, undefined, { signal });
      } catch (error) {
        if (error instanceof Error && error.name === 'AbortError') break;
        throw error;
      }
    }
  } finally {
    await current?.handle.close();
  }
}

interface OpenFile {
  readonly path: string;
  readonly handle: FileHandle;
  readonly dev: number;
  readonly ino: number;
  offset: number;
  /** Bytes of an incomplete last line, waiting for the rest. */
  pending: Buffer;
  /** Line number of the next complete line. */
  line: number;
}

async function openAt(filePath: string, from: 'start' | 'end'): Promise<OpenFile | undefined> {
  let handle: FileHandle;
  try {
    handle = await open(filePath, 'r');
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return undefined;
    throw readError(filePath, error);
  }
  try {
    const info = await handle.stat();
    let offset = 0;
    let line = 1;
    if (from === 'end') {
      // Start after the last complete line, so a line being written is still delivered whole.
      const text = await handle.readFile('utf8');
      const end = text.lastIndexOf('\n') + 1;
      offset = Buffer.byteLength(text.slice(0, end), 'utf8');
      line = countNewlines(text.slice(0, end)) + 1;
    }
    return { path: filePath, handle, dev: info.dev, ino: info.ino, offset, pending: Buffer.alloc(0), line };
  } catch (error) {
    await handle.close();
    throw readError(filePath, error);
  }
}

/**
 * Opens the current file at its start, then reads the rotated files and the current file
 * through that handle, and delivers the last `last` records that pass `keep`. The current file
 * is opened first: a rotation right after moves it to `.1`, where it is recognised by its inode
 * and not read twice, and the following loop then finds the new file as after any rotation.
 */
async function openWithBacklog(
  dir: string,
  fileName: string,
  last: number,
  keep: (record: AuditRecord) => boolean,
  onRecord: (record: AuditRecord) => void,
  onProblem: (problem: AuditReadProblem) => void,
): Promise<OpenFile | undefined> {
  const filePath = path.join(dir, fileName);
  const current = await openAt(filePath, 'start');
  let recent: AuditRecord[] = [];
  const collect = (record: AuditRecord): void => {
    recent.push(record);
    // Trimmed in batches, so a long log costs linear time and at most 2N records of memory.
    if (recent.length >= 2 * last) recent = recent.slice(recent.length - last);
  };
  try {
    for (const name of await auditFiles(dir, fileName)) {
      if (name === filePath) continue;
      const file = await openAt(name, 'start');
      if (file === undefined) continue;
      try {
        if (current !== undefined && file.dev === current.dev && file.ino === current.ino) continue;
        await drain(file, keep, collect, onProblem);
        flushTornTail(file, onProblem);
      } finally {
        await file.handle.close();
      }
    }
    // An incomplete last line stays pending: it is delivered once its writer finishes it.
    if (current !== undefined) await drain(current, keep, collect, onProblem);
  } catch (error) {
    await current?.handle.close();
    throw error;
  }
  recent.slice(Math.max(0, recent.length - last)).forEach(onRecord);
  return current;
}

/**
 * After a rotation moved `old` away: opens the current file, then walks `.1`, `.2`, … until
 * it meets `old`, collecting the files in between (newer than `old`), oldest first. Opening
 * newest first and skipping inodes already seen keeps this right if another rotation shifts
 * the names meanwhile. If `old` is gone (dropped by maxFiles), every rotated file is newer.
 */
async function filesAfter(filePath: string, old: OpenFile): Promise<{ next: OpenFile | undefined; skipped: OpenFile[] }> {
  const key = (file: OpenFile): string => `${file.dev}:${file.ino}`;
  const next = await openAt(filePath, 'start');
  const seen = new Set([key(old)]);
  if (next !== undefined) seen.add(key(next));
  const newerFirst: OpenFile[] = [];
  try {
    for (let index = 1; ; index++) {
      const file = await openAt(`${filePath}.${index}`, 'start');
      if (file === undefined) break;
      if (file.dev === old.dev && file.ino === old.ino) {
        await file.handle.close();
        break;
      }
      if (seen.has(key(file))) {
        await file.handle.close();
        continue;
      }
      seen.add(key(file));
      newerFirst.push(file);
    }
  } catch (error) {
    await Promise.allSettled([...newerFirst, ...(next === undefined ? [] : [next])].map((file) => file.handle.close()));
    throw error;
  }
  return { next, skipped: newerFirst.reverse() };
}

async function isReplaced(filePath: string, file: OpenFile): Promise<boolean> {
  try {
    const info = await stat(filePath);
    return info.ino !== file.ino || info.dev !== file.dev;
  } catch (error) {
    // Between the rename and the new file's creation there is no file; wait for it.
    if (systemErrorCode(error) === 'ENOENT') return false;
    throw readError(filePath, error);
  }
}

async function drain(
  file: OpenFile,
  keep: (record: AuditRecord) => boolean,
  onRecord: (record: AuditRecord) => void,
  onProblem: (problem: AuditReadProblem) => void,
): Promise<void> {
  const info = await file.handle.stat();
  if (info.size < file.offset) {
    // Truncated in place: start over from its beginning.
    file.offset = 0;
    file.pending = Buffer.alloc(0);
    file.line = 1;
  }
  const buffer = Buffer.alloc(64 * 1024);
  for (;;) {
    const { bytesRead } = await file.handle.read(buffer, 0, buffer.length, file.offset);
    if (bytesRead === 0) return;
    file.offset += bytesRead;
    const data = Buffer.concat([file.pending, buffer.subarray(0, bytesRead)]);
    const end = data.lastIndexOf(0x0a) + 1;
    file.pending = Buffer.from(data.subarray(end));
    if (end === 0) continue;
    const text = data.subarray(0, end).toString('utf8');
    file.line = parseLines(text, file.path, file.line, false, (record) => {
      if (keep(record)) onRecord(record);
    }, onProblem);
  }
}

function flushTornTail(file: OpenFile, onProblem: (problem: AuditReadProblem) => void): void {
  if (file.pending.length === 0) return;
  parseLines(file.pending.toString('utf8'), file.path, file.line, true, () => undefined, onProblem);
  file.pending = Buffer.alloc(0);
}

/**
 * Parses complete lines; with `final`, a last line without its newline is parsed too and, if
 * invalid, reported as torn. Returns the line number after the last complete line.
 */
function parseLines(
  text: string,
  file: string,
  firstLine: number,
  final: boolean,
  onRecord: (record: AuditRecord) => void,
  onProblem: (problem: AuditReadProblem) => void,
): number {
  const lines = text.split('\n');
  const tail = lines.pop() ?? '';
  let number = firstLine;
  for (const line of lines) {
    if (line.trim() !== '') {
      const record = parseRecord(line);
      if (record === undefined) onProblem({ file, line: number, kind: 'invalid_line', text: line.slice(0, PROBLEM_TEXT_MAX) });
      else onRecord(record);
    }
    number += 1;
  }
  if (final && tail.trim() !== '') {
    const record = parseRecord(tail);
    if (record === undefined) onProblem({ file, line: number, kind: 'torn_last_line', text: tail.slice(0, PROBLEM_TEXT_MAX) });
    else onRecord(record);
  }
  return number;
}

function parseRecord(line: string): AuditRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return undefined;
  }
  const parsed = auditRecordSchema.safeParse(value);
  return parsed.success ? parsed.data : undefined;
}

function compileFilter(filter: AuditFilter | undefined): (record: AuditRecord) => boolean {
  if (filter === undefined) return () => true;
  const { tool, decision, event } = filter;
  if (decision !== undefined && !(AUDIT_DECISIONS as readonly string[]).includes(decision)) {
    throw new CmdopError('invalid_input', `Unknown decision '${decision}': expected one of ${AUDIT_DECISIONS.join(', ')}.`);
  }
  if (event !== undefined && !(AUDIT_EVENTS as readonly string[]).includes(event)) {
    throw new CmdopError('invalid_input', `Unknown event '${event}': expected one of ${AUDIT_EVENTS.join(', ')}.`);
  }
  const sinceMs = filter.since?.getTime();
  if (sinceMs !== undefined && Number.isNaN(sinceMs)) {
    throw new CmdopError('invalid_input', 'Invalid since filter: the date is not a valid time.');
  }
  return (record) =>
    (tool === undefined || record.tool === tool) &&
    (decision === undefined || record.decision === decision) &&
    (event === undefined || record.event === event) &&
    (sinceMs === undefined || Date.parse(record.ts) >= sinceMs);
}

function checkLast(last: number | undefined): number | undefined {
  if (last === undefined) return undefined;
  if (!Number.isSafeInteger(last) || last < 0) {
    throw new CmdopError('invalid_input', `Invalid count ${String(last)}: -n takes a whole number of records, 0 or more.`);
  }
  return last;
}

/** The rotated files oldest first (`audit.log.5` … `audit.log.1`), then the current file. */
async function auditFiles(dir: string, fileName: string): Promise<string[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return [];
    throw readError(dir, error);
  }
  const rotated: { index: number; name: string }[] = [];
  const prefix = `${fileName}.`;
  for (const name of names) {
    if (!name.startsWith(prefix)) continue;
    const suffix = name.slice(prefix.length);
    if (/^[1-9]\d{0,5}$/.test(suffix)) rotated.push({ index: Number(suffix), name });
  }
  rotated.sort((a, b) => b.index - a.index);
  const files = rotated.map(({ name }) => path.join(dir, name));
  if (names.includes(fileName)) files.push(path.join(dir, fileName));
  return files;
}

function countNewlines(text: string): number {
  let count = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) count += 1;
  return count;
}

// `2025-01-31`, `2025-01-31T12:00`, `2025-01-31T12:00:00.5Z`, `2025-01-31 12:00:00+01:00`.
const ISO_TIME = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:?\d{2})?)?$/i;

/** JavaScript rolls `2025-02-30` over to March 2; such a date was never a real one. */
function isRealTime(match: RegExpExecArray): boolean {
  const [year, month, day, hour, minute, second] = Array.from({ length: 6 }, (_, i) => Number(match[i + 1] ?? 0));
  if (year === undefined || month === undefined || day === undefined) return false;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  return month >= 1 && month <= 12 && day >= 1 && day <= daysInMonth && (hour ?? 0) <= 23 && (minute ?? 0) <= 59 && (second ?? 0) <= 59;
}

function readError(file: string, reason: unknown): CmdopError {
  return new CmdopError('internal', `Could not read the audit log at ${file} (${reason instanceof Error ? reason.message : String(reason)}).`, {
    cause: reason,
    hint: 'Check that the audit directory exists and is readable by this user.',
  });
}
