/**
 * Calls refused before the gate (no certificate, a foreign or expired one, a revoked or forged
 * credential, a malformed request) are audited, but an unauthenticated client must not be able
 * to flood the audit log and rotate its history away. Per caller address and minute, each
 * distinct refusal (its reason, which names the credential) is written once, up to
 * {@link MAX_REASONS} of them; repeats and the rest are counted and reported with the next line
 * written for that address. So a revoked key tried in a loop is one line and a count, while a
 * second credential refused from the same address still has a line of its own.
 */
import { createAuditRecord } from '../audit/audit-record.js';
import type { AuditSink } from '../audit/audit-sink.js';
import type { AgentLog } from './agent-log.js';

export interface RefusalWindow {
  /** Whether to write this refusal now, and how many were left unwritten before it. */
  admit(address: string, reason?: string, now?: number): { write: boolean; suppressed: number };
}

const WINDOW_MS = 60_000;
/** Addresses remembered at once; the oldest are forgotten first. */
const MAX_ADDRESSES = 4096;
/** Distinct refusals written per address in a window. */
const MAX_REASONS = 16;

export function createRefusalWindow(windowMs = WINDOW_MS, maxAddresses = MAX_ADDRESSES, maxReasons = MAX_REASONS): RefusalWindow {
  const seen = new Map<string, { since: number; suppressed: number; reasons: Set<string> }>();
  return {
    admit(address, reason = '', now = Date.now()) {
      const key = hostOf(address);
      const entry = seen.get(key);
      if (entry !== undefined && now - entry.since < windowMs) {
        if (!entry.reasons.has(reason) && entry.reasons.size < maxReasons) {
          entry.reasons.add(reason);
          return { write: true, suppressed: 0 };
        }
        entry.suppressed++;
        return { write: false, suppressed: 0 };
      }
      const suppressed = entry?.suppressed ?? 0;
      seen.delete(key);
      seen.set(key, { since: now, suppressed: 0, reasons: new Set([reason]) });
      if (seen.size > maxAddresses) {
        const oldest = seen.keys().next().value;
        if (oldest !== undefined) seen.delete(oldest);
      }
      return { write: true, suppressed };
    },
  };
}

/**
 * The caller's address without its port, so a new connection does not make a new caller:
 * `127.0.0.1:51234` (grpc-js) and `ipv4:127.0.0.1:51234` → `127.0.0.1`, `[::1]:51234` and
 * `ipv6:[::1]:51234` → `::1`. Anything else (a host name and tool) is its own key.
 */
function hostOf(address: string): string {
  const text = address.replace(/^ipv[46]:/, '');
  const v6 = /^\[([^\]]+)\]:\d+$/.exec(text);
  if (v6 !== null) return v6[1] ?? text;
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(text);
  return v4?.[1] ?? text;
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
