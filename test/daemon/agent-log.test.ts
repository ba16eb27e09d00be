import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openAgentLog } from '../../src/daemon/agent-log.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cmdop-agent-log-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('the agent log', () => {
  it('writes JSON lines at 0600 with secrets in fields and error messages redacted', async () => {
    const path = join(dir, 'logs', 'agent.log');
    const log = await openAgentLog({ path });
    const link = 'cmdop-share.eyJ2IjoxfQ.Q2x1ZV9zZWNyZXRfdmFsdWVfMzJfYnl0ZXNfbG9uZw';
    log.error('could not add the rule the operator chose', { rule: 'execute_command(deploy --token hunter2-prod)', error: new Error(`bad link ${link}`) });
    log.info('plain', { nested: { cmd: 'PGPASSWORD=pw psql' } });
    log.debug('not shown without debug');
    await log.close();
    const text = readFileSync(path, 'utf8');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(text).not.toContain('hunter2-prod');
    expect(text).not.toContain('Q2x1ZV9zZWNyZXRfdmFsdWVfMzJfYnl0ZXNfbG9uZw');
    expect(text).not.toContain('PGPASSWORD=pw');
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string; rule?: string; error?: { name: string; message: string } });
    expect(lines.map((l) => l.msg)).toEqual(['could not add the rule the operator chose', 'plain']);
    expect(lines[0]).toMatchObject({ level: 'error', rule: 'execute_command(deploy --token [REDACTED])', error: { name: 'Error', message: 'bad link cmdop-share.[REDACTED]' } });
  });
});
