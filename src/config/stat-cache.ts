/**
 * Reading a state file on every call without re-reading it: the last parse is reused while the
 * file is the same file, unchanged (inode, size, times, mode, owner). A stat of a file the
 * kernel has cached takes microseconds, so a change written by the CLI counts from the next call.
 */
import { statSync } from 'node:fs';

/** A stamp that changes whenever the file is replaced or changed; undefined when it cannot be read. */
export function fileStamp(file: string): string | undefined {
  try {
    const info = statSync(file);
    return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}:${info.mode}:${info.uid}`;
  } catch {
    return undefined;
  }
}

/** A reader of one kind of file that parses each version of a file once. */
export interface StatCache<T> {
  /** The parsed content of `file`, from the cache while the file is unchanged. */
  read(file: string): Promise<T>;
}

/** Makes a {@link StatCache} around `parse`, which reads and parses a file (errors are not cached). */
export function createStatCache<T>(parse: (file: string) => Promise<T>): StatCache<T> {
  const last = new Map<string, { stamp: string; value: T }>();
  return {
    async read(file) {
      const stamp = fileStamp(file);
      const cached = last.get(file);
      if (cached !== undefined && stamp !== undefined && cached.stamp === stamp) return cached.value;
      const value = await parse(file);
      if (stamp === undefined) last.delete(file);
      else last.set(file, { stamp, value });
      return value;
    },
  };
}
