import { appendFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createAuditRecord, createOutcomeRecord } from '../../src/audit/audit-record.js';
import { createAuditSink } from '../../src/audit/audit-sink.js';
import { CMDOP_BIN, runCmdop, tempHome } from '../helpers/run-cmdop.js';

let home: string;
let cleanup: () => void;
beforeEach(() => {
  ({ home, cleanup } = tempHome());
});
afterEach(() => {
  cleanup();
});

const logs = (): string => join(home, 'logs');

function record(i: number, decision: 'allow' | 'deny', tool: 'execute_command' | 'read_file', minutesAgo: number): ReturnType<typeof createAuditRecord> {
  return createAuditRecord({
    decision,
    tool,
    target: tool === 'execute_command' ? `git log -n ${i}` : `/srv/app/file-${i}.txt`,
    mode: 'default',
    source: decision === 'deny' ? 'floor' : 'rule',
    rule: decision === 'deny' ? null : 'execute_command(git *)',
    reason: `reason ${i}`,
    hostname: 'vps-bmw',
    user: 'host:vps-bmw',
    input: { i },
    now: new Date(Date.now() - minutesAgo * 60_000),
  });
}

async function writeLog(): Promise<void> {
  const sink = await createAuditSink({ dir: logs() });
  await sink.append(record(1, 'allow', 'execute_command', 120));
  await sink.append(record(2, 'deny', 'read_file', 90));
  const third = record(3, 'allow', 'execute_command', 30);
  await sink.append(third);
  await sink.append(createOutcomeRecord(third, { status: 'ok', exit_code: 0, duration_ms: 12 }));
  await sink.append(record(4, 'deny', 'execute_command', 5));
  await sink.close();
}

describe('cmdop permissions audit', () => {
  it('prints the log as JSON lines that filter by decision, tool and time', async () => {
    await writeLog();
    const all = await runCmdop(['permissions', 'audit', '--json'], { home });
    expect(all.code).toBe(0);
    const lines = all.stdout.trim().split('\n').map((l) => JSON.parse(l) as { decision?: string; event: string; target: string });
    expect(lines.map((l) => l.event)).toEqual(['decision', 'decision', 'decision', 'outcome', 'decision']);
    const denies = await runCmdop(['permissions', 'audit', '--json', '--decision', 'deny'], { home });
    expect(denies.stdout.trim().split('\n').map((l) => (JSON.parse(l) as { target: string }).target)).toEqual(['/srv/app/file-2.txt', 'git log -n 4']);
    const recent = await runCmdop(['permissions', 'audit', '--json', '--since', '1h', '--tool', 'execute_command'], { home });
    expect(recent.stdout.trim().split('\n')).toHaveLength(3);
    const last = await runCmdop(['permissions', 'audit', '-n', '1'], { home });
    expect(last.stdout).toContain('git log -n 4');
    expect(last.stdout.trim().split('\n')).toHaveLength(1);
  });

  it('skips and reports a torn last line', async () => {
    await writeLog();
    appendFileSync(join(logs(), 'audit.log'), '{"ts":"2026-11-21T10:00:00.000Z","event":"deci');
    const run = await runCmdop(['permissions', 'audit', '--json'], { home });
    expect(run.code).toBe(0);
    expect(run.stdout.trim().split('\n')).toHaveLength(5);
    expect(run.stderr).toContain('torn last line');
  });

  it('refuses a bad --since with exit 2', async () => {
    const run = await runCmdop(['permissions', 'audit', '--since', 'yesterday-ish'], { home });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain('yesterday-ish');
  });

  it('--follow prints records as they are written', async () => {
    await writeLog();
    const child = spawn(process.execPath, [CMDOP_BIN, 'permissions', 'audit', '--follow', '--json', '-n', '1'], { env: { ...process.env, CMDOP_HOME: home } });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    try {
      await waitFor(() => out.includes('git log -n 4'));
      const sink = await createAuditSink({ dir: logs() });
      await sink.append(record(99, 'deny', 'execute_command', 0));
      await sink.close();
      await waitFor(() => out.includes('git log -n 99'));
    } finally {
      child.kill('SIGINT');
    }
    expect(out.trim().split('\n').map((l) => (JSON.parse(l) as { target: string }).target)).toEqual(['git log -n 4', 'git log -n 99']);
  });
});

async function waitFor(condition: () => boolean, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for audit output');
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
