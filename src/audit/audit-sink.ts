/**
 * The audit sink: a rotated JSON-lines file (DESIGN.md §5, §5.1, §8). `append` resolves only
 * once its line has been handed to the OS and the file has grown by it; when a line cannot
 * be written the sink fails for good, so no tool runs without its audit line.
 */

import { constants } from 'node:fs';
import { appendFile, lstat, mkdir, open, stat } from 'node:fs/promises';
import path from 'node:path';
import { createStream } from 'rotating-file-stream';
import type { RotatingFileStream } from 'rotating-file-stream';
import { CmdopError, systemErrorCode } from '../errors.js';
import type { AuditRecord } from './audit-record.js';

/** The audit file's name inside its directory (DESIGN.md §5). */
export const DEFAULT_AUDIT_FILE = 'audit.log';

/** Rotate when the current file reaches 10 MB (DESIGN.md §5). */
export const DEFAULT_AUDIT_MAX_BYTES = 10 * 1024 * 1024;

/** Keep five rotated files: audit.log.1 … audit.log.5 (DESIGN.md §5). */
export const DEFAULT_AUDIT_MAX_FILES = 5;

/** Where and how the audit log is written. */
export interface AuditSinkOptions {
  /** The directory of the audit log, created 0700 if missing (typically `CMDOP_HOME/logs`). */
  readonly dir: string;
  /** Defaults to `audit.log`; rotated files are `<fileName>.1` (newest) to `<fileName>.<maxFiles>`. */
  readonly fileName?: string;
  /** Rotate once the current file reaches this many bytes; defaults to 10 MB. */
  readonly maxBytes?: number;
  /** How many rotated files to keep; defaults to 5. */
  readonly maxFiles?: number;
}

/** Counters since the sink was created. */
export interface AuditSinkStats {
  /** Lines confirmed on disk. */
  readonly lines: number;
  /** Bytes confirmed on disk. */
  readonly bytes: number;
  /** Rotations performed. */
  readonly rotations: number;
}

/** Appends audit records, write-before-run. */
export interface AuditSink {
  /** The current (not rotated) audit file. */
  readonly path: string;
  /**
   * Resolves once the record's line is in the file; rejects with a CmdopError ('internal')
   * if it cannot be written, after which every later append rejects too.
   */
  append(record: AuditRecord): Promise<void>;
  /** Counters since the sink was created. */
  stats(): AuditSinkStats;
  /** True once a write failed; every later append rejects. */
  failed(): boolean;
  /** Waits for pending appends, then flushes and closes the file; later appends reject. */
  close(): Promise<void>;
}

interface Waiter {
  readonly resolve: () => void;
  readonly reject: (error: CmdopError) => void;
}

interface Pending {
  readonly line: string;
  readonly waiter: Waiter;
}

// Most bytes handed to the stream in one write. Lines are grouped into one write while the
// previous write is in flight (group commit), which is what makes the sink fast; the cap
// bounds how far a file can grow past maxBytes before it rotates.
const MAX_BATCH_BYTES = 1024 * 1024;

/** Opens (creating if needed) the audit log in `options.dir`; rejects if it cannot be written. */
export async function createAuditSink(options: AuditSinkOptions): Promise<AuditSink> {
  const fileName = options.fileName ?? DEFAULT_AUDIT_FILE;
  const maxBytes = options.maxBytes ?? DEFAULT_AUDIT_MAX_BYTES;
  const maxFiles = options.maxFiles ?? DEFAULT_AUDIT_MAX_FILES;
  checkOptions(fileName, maxBytes, maxFiles);

  const dir = path.resolve(options.dir);
  const filePath = path.join(dir, fileName);
  const rotatedPath = `${filePath}.1`;

  await prepareDirectory(dir, filePath);
  await prepareFile(filePath);

  const stream: RotatingFileStream = createStream(fileName, {
    path: dir,
    size: `${maxBytes}B`,
    rotate: maxFiles,
    mode: 0o600,
  });

  let failure: CmdopError | undefined;
  let closing = false;
  let closed: Promise<void> | undefined;
  const queue: Pending[] = [];
  let head = 0;
  let inFlight: readonly Waiter[] | undefined;
  let idleWaiters: (() => void)[] = [];
  // Size the current file must have after the last confirmed write; a smaller file means a
  // short write (a full disk) or someone truncating the log.
  let expectedSize = 0;
  let rotations = 0;
  let lines = 0;
  let bytes = 0;
  const batchLimit = Math.max(1, Math.min(MAX_BATCH_BYTES, Math.floor(maxBytes / 4)));

  const fail = (reason: unknown): void => {
    if (failure === undefined) failure = writeError(filePath, reason);
    const error = failure;
    if (inFlight !== undefined) for (const waiter of inFlight) waiter.reject(error);
    inFlight = undefined;
    for (let i = head; i < queue.length; i++) queue[i]?.waiter.reject(error);
    queue.length = 0;
    head = 0;
    if (!stream.destroyed) stream.destroy();
    notifyIdle();
  };

  const notifyIdle = (): void => {
    if (inFlight !== undefined || head < queue.length) return;
    const waiting = idleWaiters;
    idleWaiters = [];
    for (const resolve of waiting) resolve();
  };

  // Always listening: an unhandled 'error' would crash the daemon instead of failing closed.
  stream.on('error', fail);
  stream.on('rotation', () => {
    rotations += 1;
  });

  try {
    await new Promise<void>((resolve, reject) => {
      const onOpen = (): void => {
        stream.off('error', onError);
        resolve();
      };
      const onError = (error: Error): void => {
        stream.off('open', onOpen);
        reject(error);
      };
      stream.once('open', onOpen);
      stream.once('error', onError);
    });
    expectedSize = (await stat(filePath)).size;
  } catch (error) {
    fail(error);
    throw writeError(filePath, error);
  }

  const confirm = async (batchBytes: number, rotated: boolean): Promise<void> => {
    // rotating-file-stream ignores short writes (a nearly full disk), so check the file
    // really grew by the batch. A batch that triggered a rotation is the tail of `.1`.
    const written = rotated ? rotatedPath : filePath;
    let size: number;
    try {
      size = (await stat(written)).size;
    } catch (error) {
      throw new Error(`${written} disappeared while in use (${describe(error)})`, { cause: error });
    }
    const expected = expectedSize + batchBytes;
    if (size < expected) {
      throw new Error(`short write: ${written} is ${size} bytes, expected at least ${expected} (disk full or file truncated)`);
    }
    expectedSize = rotated ? 0 : size;
  };

  const pump = (): void => {
    if (inFlight !== undefined || failure !== undefined || head >= queue.length) return;
    const parts: string[] = [];
    const waiters: Waiter[] = [];
    let size = 0;
    while (head < queue.length) {
      const next = queue[head];
      if (next === undefined) break;
      if (parts.length > 0 && size + next.line.length > batchLimit) break;
      parts.push(next.line);
      waiters.push(next.waiter);
      size += next.line.length;
      head += 1;
    }
    if (head === queue.length) {
      queue.length = 0;
      head = 0;
    } else if (head > 4096) {
      queue.splice(0, head);
      head = 0;
    }
    inFlight = waiters;
    const chunk = Buffer.from(parts.join(''), 'utf8');
    const rotationsBefore = rotations;
    stream.write(chunk, (error) => {
      if (error !== undefined && error !== null) {
        fail(error);
        return;
      }
      if (inFlight !== waiters) return; // already rejected by a failure
      confirm(chunk.length, rotations !== rotationsBefore).then(
        () => {
          if (inFlight !== waiters) return;
          inFlight = undefined;
          lines += waiters.length;
          bytes += chunk.length;
          for (const waiter of waiters) waiter.resolve();
          pump();
          notifyIdle();
        },
        fail,
      );
    });
  };

  return {
    path: filePath,

    append(record: AuditRecord): Promise<void> {
      if (failure !== undefined) return Promise.reject(failure);
      if (closing) return Promise.reject(closedError(filePath));
      let line: string;
      try {
        // JSON.stringify escapes newlines inside strings, so a record is always exactly one line.
        line = `${JSON.stringify(record)}\n`;
      } catch (error) {
        return Promise.reject(writeError(filePath, error));
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({ line, waiter: { resolve, reject } });
        pump();
      });
    },

    stats(): AuditSinkStats {
      return { lines, bytes, rotations };
    },

    failed(): boolean {
      return failure !== undefined;
    },

    close(): Promise<void> {
      closed ??= (async () => {
        closing = true;
        if (inFlight !== undefined || head < queue.length) {
          await new Promise<void>((resolve) => idleWaiters.push(resolve));
        }
        if (failure !== undefined || stream.destroyed) return;
        await new Promise<void>((resolve, reject) => {
          stream.end((error?: Error | null) => {
            if (error === undefined || error === null) resolve();
            else reject(writeError(filePath, error));
          });
        });
      })();
      return closed;
    },
  };
}

function checkOptions(fileName: string, maxBytes: number, maxFiles: number): void {
  if (fileName === '' || fileName === '.' || fileName === '..' || fileName.includes('/') || fileName.includes(path.sep)) {
    throw new CmdopError('config', `Invalid audit file name '${fileName}': it must be a plain file name such as '${DEFAULT_AUDIT_FILE}'.`);
  }
  if (!Number.isSafeInteger(maxBytes) || maxBytes <= 0) {
    throw new CmdopError('config', `Invalid audit maxBytes ${String(maxBytes)}: it must be a positive whole number of bytes.`);
  }
  if (!Number.isSafeInteger(maxFiles) || maxFiles <= 0) {
    throw new CmdopError('config', `Invalid audit maxFiles ${String(maxFiles)}: it must be a positive whole number.`);
  }
}

/** Creates the directory 0700, and refuses one that others can write to or that someone else owns. */
async function prepareDirectory(dir: string, filePath: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (error) {
    throw writeError(filePath, error);
  }
  const info = await lstat(dir).catch((error: unknown) => {
    throw writeError(filePath, error);
  });
  if (!info.isDirectory()) throw writeError(filePath, new Error(`${dir} is not a directory`));
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new CmdopError('config', `The audit directory ${dir} is owned by uid ${info.uid}, not by this user (uid ${uid}); refusing to write the audit log there.`, {
      hint: `Give the directory to this user (chown) or choose another audit directory.`,
    });
  }
  if ((info.mode & 0o022) !== 0) {
    throw new CmdopError('config', `The audit directory ${dir} is writable by other users (mode ${octal(info.mode)}); refusing to write the audit log there.`, {
      hint: `Run: chmod 700 ${dir}`,
    });
  }
}

/**
 * Refuses an existing log that is not a regular file, is readable or writable by others, or
 * belongs to someone else; ends a torn last line (a crash mid-write) with a newline so the
 * next record starts on a line of its own.
 */
async function prepareFile(filePath: string): Promise<void> {
  let info;
  try {
    info = await lstat(filePath);
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return;
    throw writeError(filePath, error);
  }
  if (!info.isFile()) throw writeError(filePath, new Error(`${filePath} is not a regular file`));
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new CmdopError('config', `The audit log ${filePath} is owned by uid ${info.uid}, not by this user (uid ${uid}); refusing to write it.`, {
      hint: 'Give the file to this user (chown) or move it away.',
    });
  }
  if ((info.mode & 0o077) !== 0) {
    throw new CmdopError('config', `The audit log ${filePath} is accessible to other users (mode ${octal(info.mode)}); refusing to write it.`, {
      hint: `Run: chmod 600 ${filePath}`,
    });
  }
  if (info.size === 0) return;
  try {
    const handle = await open(filePath, constants.O_RDONLY | constants.O_NOFOLLOW);
    let last: number | undefined;
    try {
      const buffer = Buffer.alloc(1);
      const { bytesRead } = await handle.read(buffer, 0, 1, info.size - 1);
      last = bytesRead === 1 ? buffer[0] : undefined;
    } finally {
      await handle.close();
    }
    if (last !== undefined && last !== 0x0a) await appendFile(filePath, '\n', { mode: 0o600 });
  } catch (error) {
    throw writeError(filePath, error);
  }
}

function writeError(filePath: string, reason: unknown): CmdopError {
  if (reason instanceof CmdopError) return reason;
  return new CmdopError('internal', `The audit log could not be written at ${filePath} (${describe(reason)}); the tool was not run.`, {
    cause: reason,
    hint: 'Check that the audit directory exists and is writable and that the disk has free space, then restart the daemon.',
    details: { path: filePath },
  });
}

function closedError(filePath: string): CmdopError {
  return new CmdopError('internal', `The audit log at ${filePath} is closed, so the call could not be recorded; the tool was not run.`, {
    details: { path: filePath },
  });
}

function describe(reason: unknown): string {
  return reason instanceof Error ? reason.message : String(reason);
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}
