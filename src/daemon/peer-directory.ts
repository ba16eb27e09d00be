/**
 * The peers this daemon knows and the clients it calls them with. A joined host announces its
 * listen address to the CA host every `announceIntervalMs` and gets the whole roster back; the
 * CA host records announces and answers with what it knows. A host is online while it has been
 * heard from within three intervals, so a host that stops is seen offline and a host that moves
 * or restarts is found again at its next announce.
 *
 * The directory also knows which hosts were revoked from the workspace: on the CA host from the
 * file `cmdop workspace revoke` writes, on a joined host from the CA host's latest announce reply
 * (kept in the same file, so a restart keeps it). Revoked hosts are left out of every roster.
 */
import { CmdopError } from '../errors.js';
import type { HostIdentity } from '../identity/host-cert.js';
import { createMeshClient, type MeshClient } from '../transport/grpc-client.js';
import type { PeerEntry } from '../transport/local-api.js';
import type { RosterEntry } from '../transport/mesh-handler.js';
import type { AgentLog } from './agent-log.js';
import type { Membership } from './membership.js';
import { cacheRevoked, currentRevokedNames } from './revoked-names.js';
import { cacheCredentials } from './workspace-credentials.js';
import { lookupPeer, mergeLearnt, readRoster, updateRoster, type RosterRecord } from './roster.js';

export type RosterView = RosterEntry;

/** An unknown credential makes a joined host ask the CA host at most this often. */
const MIN_REFRESH_GAP_MS = 5_000;

export interface PeerDirectory {
  /** Every known host, this one first. */
  list(): Promise<PeerEntry[]>;
  /** A client for `name`; CmdopError('not_found') for a host nobody knows. */
  client(name: string): Promise<{ client: MeshClient; name: string; address: string }>;
  /** Begins announcing (joined hosts) once the server listens at `listenAddress`. */
  start(listenAddress: string): void;
  /** CA host: records an announce and answers with the roster. */
  recordAnnounce(name: string, address: string): Promise<RosterView[]>;
  /** CA host: the roster as peers see it. */
  roster(): Promise<RosterView[]>;
  /** Whether `name` was revoked from the workspace (as far as this host knows); CmdopError('config') when the list is damaged. */
  isRevoked(name: string): Promise<boolean>;
  /** The host names revoked from the workspace, sorted. */
  revoked(): Promise<string[]>;
  /** CA host: a host that just joined, not yet announced. */
  registerJoined(name: string): Promise<void>;
  /** Whether `name` is taken in the workspace (as far as this host knows). */
  isTaken(name: string): Promise<boolean>;
  /**
   * Joined host: announces to the CA host now, to learn of a key created a moment ago, unless
   * it did so within the last few seconds; resolves when done (never rejects). CA host: nothing.
   */
  refreshNow(): Promise<void>;
  /** Joined host: when the CA host last answered an announce (epoch ms; 0 before the first). CA host: now. */
  lastCaContact(): number;
  /** Drops cached clients (after this host's certificate was renewed). */
  resetClients(): void;
  close(): void;
}

export interface PeerDirectoryOptions {
  readonly home: string;
  readonly self: string;
  readonly membership: Membership;
  readonly identity: () => HostIdentity;
  readonly log: AgentLog;
  readonly announceIntervalMs: number;
}

export function createPeerDirectory(options: PeerDirectoryOptions): PeerDirectory {
  const { home, self, membership, log } = options;
  const staleAfter = options.announceIntervalMs * 3;
  const clients = new Map<string, MeshClient>();
  /** CA host: when each host last announced (this run only). */
  const heard = new Map<string, number>();
  /** Joined host: what the CA host last said about each host, and when we last reached it. */
  let learnt = new Map<string, boolean>();
  let lastCaContact = 0;
  let selfAddress = membership.ca_address;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let refreshing: Promise<void> | undefined;
  let lastRefresh = 0;

  const isOnline = (record: RosterRecord, now: number): boolean => {
    if (membership.is_ca) {
      const at = heard.get(record.name);
      return at !== undefined && now - at < staleAfter;
    }
    if (now - lastCaContact >= staleAfter) return false;
    if (record.name === membership.ca_host_name) return true;
    return learnt.get(record.name) ?? false;
  };

  const rosterView = async (): Promise<RosterView[]> => {
    const now = Date.now();
    const revoked = await currentRevokedNames(home);
    const records = (await readRoster(home)).filter((r) => r.source === 'roster' && !revoked.has(r.name));
    const view: RosterView[] = [{ name: self, address: selfAddress, last_seen: new Date(now).toISOString(), online: true }];
    for (const r of records) {
      if (r.name === self || r.address === '') continue;
      view.push({ name: r.name, address: r.address, ...(r.last_seen === null ? {} : { last_seen: r.last_seen }), online: isOnline(r, now) });
    }
    return view;
  };

  // One announce at a time: replies written out of order could undo a newer one for an interval.
  let announcing: Promise<void> | undefined;
  const announce = (): Promise<void> => {
    announcing ??= announceOnce().finally(() => {
      announcing = undefined;
    });
    return announcing;
  };

  const announceOnce = async (): Promise<void> => {
    const ca = lookupPeer(await readRoster(home), membership.ca_host_name);
    const address = ca?.address ?? membership.ca_address;
    try {
      const client = clientFor(membership.ca_host_name, address);
      const reply = await client.announce({ address: selfAddress }, { timeoutMs: Math.min(10_000, options.announceIntervalMs * 2) });
      lastCaContact = Date.now();
      // The revoked list first: a host the CA host revoked is refused here from the next call.
      if (reply.revoked.length > 0) await cacheRevoked(home, reply.revoked);
      await cacheCredentials(home, reply.credentials);
      const revoked = new Set(reply.revoked);
      learnt = new Map(reply.peers.filter((p) => !revoked.has(p.name)).map((p) => [p.name, p.online]));
      await updateRoster(home, (records) =>
        mergeLearnt(
          records,
          reply.peers.filter((p) => !revoked.has(p.name)).map((p) => ({ name: p.name, address: p.address ?? '', last_seen: p.last_seen === undefined || p.last_seen === '' ? null : p.last_seen })),
          self,
        ),
      );
    } catch (error) {
      log.warn('could not announce to the CA host', { ca: membership.ca_host_name, address, error: CmdopError.from(error).message });
    }
  };

  const clientFor = (name: string, address: string): MeshClient => {
    const key = `${name}@${address}`;
    let client = clients.get(key);
    if (client === undefined) {
      // A client for an old address of the same host is of no more use.
      for (const [k, c] of clients) {
        if (k.startsWith(`${name}@`)) {
          c.close();
          clients.delete(k);
        }
      }
      client = createMeshClient({ address, tls: options.identity(), expectedHostName: name });
      clients.set(key, client);
    }
    return client;
  };

  return {
    async list() {
      const now = Date.now();
      const records = await readRoster(home);
      const revoked = await currentRevokedNames(home);
      const entries: PeerEntry[] = [{ name: self, address: selfAddress, online: true, last_seen: new Date(now).toISOString(), source: 'self' }];
      const names = [...new Set(records.map((r) => r.name))].filter((n) => n !== self && !revoked.has(n)).sort();
      for (const name of names) {
        const r = lookupPeer(records, name);
        if (r === undefined) continue;
        const at = membership.is_ca ? heard.get(name) : undefined;
        entries.push({
          name,
          address: r.address,
          online: r.source === 'manual' ? isOnline({ ...r, source: 'roster' }, now) || (membership.is_ca && at !== undefined && now - at < staleAfter) : isOnline(r, now),
          last_seen: at === undefined ? r.last_seen : new Date(at).toISOString(),
          source: r.source,
        });
      }
      return entries;
    },
    async client(name) {
      const wanted = name.toLowerCase();
      const record = lookupPeer(await readRoster(home), wanted);
      if (record === undefined || record.address === '') {
        throw new CmdopError('not_found', `unknown host "${name}": it is not in this workspace's roster`, {
          hint: 'See the known hosts with `cmdop peers list`, or add one with `cmdop peers add NAME --address HOST:PORT`.',
          details: { host: name },
        });
      }
      return { client: clientFor(record.name, record.address), name: record.name, address: record.address };
    },
    start(listenAddress) {
      selfAddress = listenAddress;
      if (membership.is_ca) {
        void updateRoster(home, (records) => (records.some((r) => r.name === self) ? records.filter((r) => r.name !== self) : undefined)).catch(() => undefined);
        return;
      }
      const tick = (): void => {
        if (closed) return;
        void announce().finally(() => {
          if (!closed) timer = setTimeout(tick, options.announceIntervalMs);
        });
      };
      tick();
    },
    async recordAnnounce(name, address) {
      if (!membership.is_ca) {
        throw new CmdopError('denied', `${self} is not the CA host of this workspace; announce to ${membership.ca_host_name}`);
      }
      if ((await currentRevokedNames(home)).has(name)) {
        throw new CmdopError('denied', `refused before the gate: the host ${name} was revoked from this workspace`, { details: { stage: 'authentication' } });
      }
      heard.set(name, Date.now());
      const iso = new Date().toISOString();
      await updateRoster(home, (records) => {
        const others = records.filter((r) => !(r.name === name && r.source === 'roster'));
        return [...others, { name, address, last_seen: iso, source: 'roster' }];
      });
      return rosterView();
    },
    roster: rosterView,
    async isRevoked(name) {
      return (await currentRevokedNames(home)).has(name.toLowerCase());
    },
    async revoked() {
      return [...(await currentRevokedNames(home))].sort();
    },
    async registerJoined(name) {
      await updateRoster(home, (records) => [...records.filter((r) => !(r.name === name && r.source === 'roster')), { name, address: '', last_seen: null, source: 'roster' }]);
    },
    async isTaken(name) {
      if (name === self) return true;
      return (await readRoster(home)).some((r) => r.name === name);
    },
    lastCaContact() {
      return membership.is_ca ? Date.now() : lastCaContact;
    },
    refreshNow() {
      if (membership.is_ca || closed) return Promise.resolve();
      if (refreshing !== undefined) return refreshing;
      if (Date.now() - lastRefresh < MIN_REFRESH_GAP_MS) return Promise.resolve();
      lastRefresh = Date.now();
      refreshing = announce().finally(() => {
        refreshing = undefined;
      });
      return refreshing;
    },
    resetClients() {
      for (const c of clients.values()) c.close();
      clients.clear();
    },
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      for (const c of clients.values()) c.close();
      clients.clear();
    },
  };
}
