/**
 * The hosts revoked from the workspace (`tls/revoked-names.json`, 0600). On the CA host it is
 * the record `cmdop workspace revoke` writes; on a joined host it caches the list the CA host
 * sends with every announce reply, so a restarted daemon refuses revoked hosts before it has
 * heard from the CA host again. A name is never taken off the list: revocation is final, and
 * the name stays issued, so nobody can join under it again.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { updateStateFile } from '../config/file-lock.js';
import { readSecureFile } from '../config/secure-file.js';
import { createStatCache } from '../config/stat-cache.js';
import { CmdopError } from '../errors.js';
import { tlsDir } from '../identity/workspace-ca.js';

/** Most names the list may hold (the wire carries at most this many). */
export const MAX_REVOKED_NAMES = 10_000;

const schema = z.object({ version: z.literal(1), names: z.array(z.object({ name: z.string(), revoked_at: z.string() }).strict()) }).strict();

interface RevokedRecord {
  name: string;
  revoked_at: string;
}

export function revokedPath(home: string): string {
  return join(tlsDir(home), 'revoked-names.json');
}

function parse(file: string, text: string | undefined): RevokedRecord[] {
  if (text === undefined) return [];
  try {
    return schema.parse(JSON.parse(text)).names;
  } catch (error) {
    // Fail closed: without the list no caller can be shown not to be revoked.
    throw new CmdopError('config', `${file} is damaged, so this host refuses peer calls until it is restored`, {
      cause: error,
      hint: 'On the CA host, restore it from a backup; on a joined host, remove it and restart the daemon to fetch it again from the CA host.',
    });
  }
}

function render(names: readonly RevokedRecord[]): string {
  return `${JSON.stringify({ version: 1, names }, null, 2)}\n`;
}

/** The revoked names, read afresh. */
export async function revokedNames(home: string): Promise<ReadonlySet<string>> {
  return namesIn(revokedPath(home));
}

async function namesIn(file: string): Promise<ReadonlySet<string>> {
  return new Set(parse(file, await readSecureFile(file)).map((n) => n.name));
}

const lastRead = createStatCache(namesIn);

/**
 * The revoked names for a check on every peer call: the last reading is reused while the file
 * is the same file, unchanged, so a revocation written by the CLI counts from the next call.
 */
export async function currentRevokedNames(home: string): Promise<ReadonlySet<string>> {
  return lastRead.read(revokedPath(home));
}

/** CA host: records `name` as revoked; false when it already was. */
export async function recordRevoked(home: string, name: string): Promise<{ added: boolean; revoked_at: string }> {
  const file = revokedPath(home);
  let result = { added: false, revoked_at: '' };
  await updateStateFile(file, (current) => {
    const names = parse(file, current);
    const known = names.find((n) => n.name === name);
    if (known !== undefined) {
      result = { added: false, revoked_at: known.revoked_at };
      return undefined;
    }
    if (names.length >= MAX_REVOKED_NAMES) {
      throw new CmdopError('rate_limited', `${file} already holds ${MAX_REVOKED_NAMES} revoked names, the most the workspace can carry`);
    }
    result = { added: true, revoked_at: new Date().toISOString() };
    return render([...names, { name, revoked_at: result.revoked_at }]);
  });
  return result;
}

/**
 * Joined host: adds the names the CA host sent to the cached list. Names are only ever added,
 * so an old or partial answer never lets a revoked host back in; a damaged cache is replaced
 * by the CA host's list, which is the record it caches.
 */
export async function cacheRevoked(home: string, names: readonly string[]): Promise<void> {
  const file = revokedPath(home);
  await updateStateFile(file, (current) => {
    let known: RevokedRecord[];
    let damaged = false;
    try {
      known = parse(file, current);
    } catch {
      known = [];
      damaged = true;
    }
    const have = new Set(known.map((n) => n.name));
    const now = new Date().toISOString();
    const added = [...new Set(names)].filter((n) => !have.has(n)).map((name) => ({ name, revoked_at: now }));
    if (added.length === 0 && !damaged) return undefined;
    return render([...known, ...added].slice(0, MAX_REVOKED_NAMES));
  });
}
