/**
 * Read-modify-write of a state file under an exclusive lock, so that concurrent `cmdop`
 * processes never lose each other's changes.
 *
 * The lock is proper-lockfile's: an atomic `mkdir PATH.lock` whose mtime the holder refreshes
 * every few seconds. A holder that dies (even by SIGKILL) leaves a lock that goes stale and is
 * taken over after {@link LOCK_STALE_MS}; no pid files, so it works the same for every process
 * sharing the directory, and it needs no existing target (`realpath: false`).
 */
import { lock } from 'proper-lockfile';
import { CmdopError, systemErrorCode } from '../errors.js';
import { readSecureFile, removeTempFiles, writeFileAtomic } from './secure-file.js';

/** A lock not refreshed for this long belongs to a dead process and is taken over. */
export const LOCK_STALE_MS = 10_000;

/** How long a writer waits for the lock before giving up: comfortably longer than a stale lock lives. */
const LOCK_RETRIES = { retries: 120, factor: 1.3, minTimeout: 20, maxTimeout: 250, randomize: true } as const;

/** What a lock holder can ask about its lock. */
export interface HeldLock {
  /** Throws if the lock was lost (another process judged it stale and took it over). */
  readonly assertHeld: () => void;
}

/** Runs `fn` while holding the exclusive lock on `file` (the file itself need not exist). */
export async function withFileLock<T>(file: string, fn: (held: HeldLock) => Promise<T>): Promise<T> {
  let compromised: Error | undefined;
  let release: () => Promise<void>;
  try {
    release = await lock(file, {
      realpath: false,
      stale: LOCK_STALE_MS,
      retries: LOCK_RETRIES,
      // The default throws from a timer, which would crash the process; record it instead and
      // refuse to commit (assertHeld) while the lock is not ours.
      onCompromised: (error) => {
        compromised = error;
      },
    });
  } catch (error) {
    if (systemErrorCode(error) === 'ELOCKED') {
      throw new CmdopError('unavailable', `${file} is locked by another cmdop process`, {
        cause: error,
        hint: `Try again in a moment. A lock left by a crashed process clears itself after ${LOCK_STALE_MS / 1000} s; if it does not, remove the directory ${file}.lock.`,
        details: { path: file, lock: `${file}.lock` },
      });
    }
    throw new CmdopError('config', `cannot lock ${file}: ${systemErrorCode(error) ?? String(error)}`, {
      cause: error,
      hint: `Check that you own the directory of ${file} and that it is writable.`,
      details: { path: file },
    });
  }
  const held: HeldLock = {
    assertHeld: () => {
      if (compromised !== undefined) {
        throw new CmdopError('unavailable', `lost the lock on ${file} while changing it; nothing was written`, {
          cause: compromised,
          hint: 'Another process took the lock over (this process stalled for more than 10 s). Try again.',
          details: { path: file },
        });
      }
    },
  };
  try {
    return await fn(held);
  } finally {
    // Once compromised the lock is not ours to remove.
    if (compromised === undefined) await release().catch(() => undefined);
  }
}

/**
 * Locks `file`, re-reads it (secure read; undefined when missing), and replaces it atomically
 * with mode 0600 by what `transform` returns; returning undefined, or the same text, writes nothing.
 */
export async function updateStateFile(
  file: string,
  transform: (current: string | undefined) => Promise<string | undefined> | string | undefined,
): Promise<void> {
  await withFileLock(file, async (held) => {
    // Temp files left by a writer that crashed; nobody else writes them while we hold the lock.
    await removeTempFiles(file);
    const current = await readSecureFile(file);
    const next = await transform(current);
    if (next === undefined || next === current) return;
    held.assertHeld();
    await writeFileAtomic(file, next, 0o600, { beforeRename: held.assertHeld });
  });
}
