/**
 * The read_file tool: reads a byte range of one regular file, capped, after checking that the
 * file actually opened is one the gate allows.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { CmdopError } from '../errors.js';
import { approvedAbsolutePath, assertOpenedPathAllowed, requireApproval, type Approval } from './approval.js';
import { realPathOfHandle } from './fd-path.js';
import { fsError } from './fs-error.js';
import { boundedInteger, MIB } from './tool-input.js';

/** Bytes returned when the caller gives no cap. */
export const DEFAULT_READ_BYTES = MIB;
/** The most bytes a caller may ask for in one call. */
export const MAX_READ_BYTES = 64 * MIB;

export interface ReadFileOptions {
  /** The path exactly as approved. */
  readonly path: string;
  /** First byte to read; default 0. */
  readonly offset?: number;
  /** Bytes wanted from `offset`; default the rest of the file. */
  readonly length?: number;
  /** Cap on bytes returned; default 1 MiB, at most 64 MiB. */
  readonly maxBytes?: number;
}

export interface ReadFileResult {
  readonly path: string;
  /** Size of the file when it was opened. */
  readonly size: number;
  readonly offset: number;
  /** Bytes returned; the next range starts at `offset + bytes`. */
  readonly bytes: number;
  /** `utf8` when the bytes are valid UTF-8 text, else `base64`. */
  readonly encoding: 'utf8' | 'base64';
  readonly content: string;
  /** True when the cap cut the range short. */
  readonly truncated: boolean;
  /** True when the range reached the end of the file. */
  readonly eof: boolean;
}

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever. O_NOCTTY:
// opening a terminal must never make it this daemon's controlling terminal.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Reads a range of an approved regular file. */
export async function readFileTool(approval: Approval, options: ReadFileOptions): Promise<ReadFileResult> {
  requireApproval(approval, 'read_file', options.path);
  const offset = boundedInteger('offset', options.offset ?? 0, 0, Number.MAX_SAFE_INTEGER);
  const length = options.length === undefined ? undefined : boundedInteger('length', options.length, 0, Number.MAX_SAFE_INTEGER);
  const maxBytes = boundedInteger('maxBytes', options.maxBytes ?? DEFAULT_READ_BYTES, 1, MAX_READ_BYTES);
  const path = approvedAbsolutePath(approval);

  const handle = await open(path, READ_FLAGS).catch((error: unknown) => {
    throw fsError(error, 'open', options.path);
  });
  try {
    // Checked before anything about the file is told, its type included.
    const real = await realPathOfHandle(handle, path);
    assertOpenedPathAllowed(approval, real.path);
    const stats = await handle.stat();
    if (!stats.isFile()) {
      const kind = stats.isDirectory() ? 'a directory' : stats.isFIFO() ? 'a FIFO' : stats.isSocket() ? 'a socket' : 'a device or special file';
      throw new CmdopError('invalid_input', `${options.path} is ${kind}; read_file reads regular files only`, {
        ...(stats.isDirectory() ? { hint: 'Use list_dir for a directory.' } : {}),
      });
    }
    const size = stats.size;
    const available = Math.max(0, size - offset);
    const wanted = Math.min(length ?? available, available);
    const buffer = Buffer.alloc(Math.min(wanted, maxBytes));
    let filled = 0;
    while (filled < buffer.length) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, offset + filled);
      // The file shrank since fstat: return what there is.
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    const data = buffer.subarray(0, filled);
    const text = decodeUtf8(data);
    return {
      path: options.path,
      size,
      offset,
      bytes: filled,
      encoding: text === undefined ? 'base64' : 'utf8',
      content: text ?? data.toString('base64'),
      truncated: wanted > maxBytes,
      eof: offset + filled >= size,
    };
  } catch (error) {
    throw fsError(error, 'read', options.path);
  } finally {
    await handle.close();
  }
}

function decodeUtf8(data: Buffer): string | undefined {
  try {
    return utf8.decode(data);
  } catch {
    return undefined;
  }
}

