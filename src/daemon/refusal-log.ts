/**
 * Calls refused before the gate (no certificate, a foreign or expired one, a malformed
 * request) are audited, but an unauthenticated client must not be able to flood the audit log
 * and rotate its history away: per caller address, the first refusal in a minute is written,
 * the rest are counted and reported with the next line written for that address.
 */
import { createAuditRecord } from '../audit/audit-record.js';
import type { AuditSink } from '../audit/audit-sink.js';
import type { AgentLog } from './agent-log.js';

export interface RefusalWindow {
  /** Whether to write this refusal now, and how many were left unwritten before it. */
  admit(address: string, now?: number): { write: boolean; suppressed: number };
}

const WINDOW_MS = 60_000;
/** Addresses remembered at once; the oldest are forgotten first. */
const MAX_ADDRESSES = 4096;

export function createRefusalWindow(windowMs = WINDOW_MS, maxAddresses = MAX_ADDRESSES): RefusalWindow {
  const seen = new Map<string, { since: number; suppressed: number }>();
  return {
    admit(address, now = Date.now()) {
      const key = hostOf(address);
      const entry = seen.get(key);
      if (entry !== undefined && now - entry.since < windowMs) {
        entry.suppressed++;
        return { write: false, suppressed: 0 };
      }
      const suppressed = entry?.suppressed ?? 0;
      seen.delete(key);
      seen.set(key, { since: now, suppressed: 0 });
      if (seen.size > maxAddresses) {
        const oldest = seen.keys().next().value;
        if (oldest !== undefined) seen.delete(oldest);
      }
      return { write: true, suppressed };
    },
  };
}

/** `ipv4:10.0.0.5:51234` → `ipv4:10.0.0.5`: a new connection's port does not make a new caller. */
function hostOf(address: string): string {
  const cut = address.lastIndexOf(':');
  return cut > address.indexOf(':') ? address.slice(0, cut) : address;
}

/** One refusal before the gate, as its audit line says it. */
export interface Refusal {
  readonly tool: string;
  readonly reason: string;
  readonly hostname: string;
  readonly user: string;
  /** Refusals left unwritten before this one, and where they came from (`address`, `host`). */
  readonly suppressed: number;
  readonly from: string;
}

/** Writes a refusal's audit line; a write that fails is logged (nothing was going to run). */
export async function auditRefusal(audit: AuditSink, log: AgentLog, refusal: Refusal): Promise<void> {
  const reason = refusal.reason.startsWith('refused before the gate') ? refusal.reason : `refused before the gate: ${refusal.reason}`;
  const more = refusal.suppressed > 0 ? ` (${refusal.suppressed} more refused from this ${refusal.from} in the minute before, not written one by one)` : '';
  try {
    await audit.append(
      createAuditRecord({
        decision: 'deny',
        tool: refusal.tool,
        target: '',
        mode: 'default',
        source: 'identity',
        reason: `${reason}${more}`,
        hostname: refusal.hostname,
        user: refusal.user,
        input: { method: refusal.tool },
      }),
    );
  } catch (error) {
    log.error('could not audit a refused call', { error });
  }
}
