/** Shared helpers for the audit tests: temporary directories and realistic records. */

import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createAuditRecord } from '../../src/audit/audit-record.js';
import type { AuditDecisionInit, AuditDecisionRecord } from '../../src/audit/audit-record.js';

/** Creates a temporary directory and returns it with its cleanup. */
export async function makeTempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cmdop-audit-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A realistic decision record whose call id carries its sequence number. */
export function makeRecord(seq: number, overrides: Partial<AuditDecisionInit> = {}): AuditDecisionRecord {
  return createAuditRecord({
    call_id: `call-${String(seq).padStart(6, '0')}`,
    decision: 'allow',
    tool: 'execute_command',
    operation: null,
    target: `git -C /srv/app/repo-${seq} status --porcelain --branch`,
    mode: 'default',
    source: 'rule',
    rule: 'execute_command(git *)',
    reason: 'matched allow rule execute_command(git *)',
    ask_ms: 0,
    hostname: 'vps-audi',
    user: 'host:vps-audi',
    input: { command: `git -C /srv/app/repo-${seq} status --porcelain --branch`, timeout_ms: 30_000 },
    now: new Date(Date.UTC(2025, 0, 31, 12, 0, 0) + seq * 1000),
    ...overrides,
  });
}

/** Polls `check` until it returns true or the time is up. */
export async function waitFor(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
