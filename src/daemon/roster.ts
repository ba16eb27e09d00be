/**
 * The roster (`peers.json`, 0600): the hosts of the workspace and where to reach them. Entries
 * learnt from the workspace (`roster`) are kept current by the daemon; `manual` entries, set with
 * `cmdop peers add`, override them and are never touched by the daemon. The file is changed
 * under its lock and replaced atomically, so the CLI and the daemon never lose each other's edits.
 */
import { z } from 'zod';
import { updateStateFile } from '../config/file-lock.js';
import { readSecureFile } from '../config/secure-file.js';
import { createStatCache } from '../config/stat-cache.js';
import { CmdopError } from '../errors.js';
import { normalizeHostName } from '../identity/host-name.js';
import { peersPath } from './paths.js';

export interface RosterRecord {
  readonly name: string;
  readonly address: string;
  /** ISO time this host was last heard of (its announce, as the CA host saw it); null when never. */
  readonly last_seen: string | null;
  readonly source: 'roster' | 'manual';
}

const recordSchema = z
  .object({
    name: z.string().min(1),
    // Empty for a host that joined and has not announced itself yet.
    address: z.string(),
    last_seen: z.string().nullable(),
    source: z.enum(['roster', 'manual']),
  })
  .strict();
const fileSchema = z.object({ version: z.literal(1), peers: z.array(recordSchema) }).strict();

// Read on every peer call: the last reading is reused while the file is the same file, unchanged.
const lastRead = createStatCache(async (file) => parseRoster(file, await readSecureFile(file)));

export async function readRoster(home: string): Promise<readonly RosterRecord[]> {
  return lastRead.read(peersPath(home));
}

function parseRoster(file: string, text: string | undefined): readonly RosterRecord[] {
  if (text === undefined) return [];
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CmdopError('config', `${file} is not valid JSON`, { cause: error, hint: `Remove ${file}; the daemon learns the roster again from the workspace.` });
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    throw new CmdopError('config', `${file} is not a cmdop roster: ${parsed.error.issues[0]?.message ?? 'bad shape'}`, {
      hint: `Remove ${file}; the daemon learns the roster again from the workspace.`,
    });
  }
  return parsed.data.peers;
}

/** Changes the roster under its lock; `change` returns the new list, or undefined to keep it. */
export async function updateRoster(home: string, change: (records: readonly RosterRecord[]) => readonly RosterRecord[] | undefined): Promise<void> {
  const file = peersPath(home);
  await updateStateFile(file, (current) => {
    const next = change(parseRoster(file, current));
    if (next === undefined) return undefined;
    const sorted = [...next].sort((a, b) => a.name.localeCompare(b.name) || a.source.localeCompare(b.source));
    return `${JSON.stringify({ version: 1, peers: sorted }, null, 2)}\n`;
  });
}

/** Records what the workspace says about its hosts, leaving manual entries as they are. */
export function mergeLearnt(records: readonly RosterRecord[], learnt: readonly { name: string; address: string; last_seen: string | null }[], self: string): readonly RosterRecord[] | undefined {
  const manual = records.filter((r) => r.source === 'manual');
  const next: RosterRecord[] = [...manual];
  for (const entry of learnt) {
    if (entry.name === self) continue;
    next.push({ name: entry.name, address: entry.address, last_seen: entry.last_seen, source: 'roster' });
  }
  const same = JSON.stringify([...records].sort(byKey)) === JSON.stringify([...next].sort(byKey));
  return same ? undefined : next;
}

function byKey(a: RosterRecord, b: RosterRecord): number {
  return a.name.localeCompare(b.name) || a.source.localeCompare(b.source);
}

/** Where to reach `name`: a manual override first, then what the workspace said. */
export function lookupPeer(records: readonly RosterRecord[], name: string): RosterRecord | undefined {
  const wanted = name.toLowerCase();
  return records.find((r) => r.name === wanted && r.source === 'manual') ?? records.find((r) => r.name === wanted && r.source === 'roster');
}

/** Adds or replaces a manual entry. */
export async function addManualPeer(home: string, name: string, address: string): Promise<RosterRecord> {
  const host = normalizeHostName(name);
  const record: RosterRecord = { name: host, address, last_seen: null, source: 'manual' };
  await updateRoster(home, (records) => [...records.filter((r) => !(r.name === host && r.source === 'manual')), record]);
  return record;
}

/** Removes `name`'s manual entry, or its learnt one when it has no manual entry; CmdopError('not_found') when unknown. */
export async function removePeer(home: string, name: string): Promise<RosterRecord> {
  const host = name.toLowerCase();
  let removed: RosterRecord | undefined;
  await updateRoster(home, (records) => {
    removed = records.find((r) => r.name === host && r.source === 'manual') ?? records.find((r) => r.name === host);
    return removed === undefined ? undefined : records.filter((r) => r !== removed);
  });
  if (removed === undefined) {
    throw new CmdopError('not_found', `no peer named ${JSON.stringify(name)}`, { hint: 'See the known peers with `cmdop peers list`.' });
  }
  return removed;
}
