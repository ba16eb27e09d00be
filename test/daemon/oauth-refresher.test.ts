/**
 * The daemon's OAuth refresher against a real OpenID provider (oidc-provider, test/helpers):
 * it refreshes ahead of expiry, and once the provider refuses the saved refresh token it stops
 * asking, until a new login.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { login, OAUTH_SERVICE } from '../../src/client/oauth-session.js';
import type { AgentLog } from '../../src/daemon/agent-log.js';
import { startOauthRefresher, type OauthRefresher } from '../../src/daemon/oauth-refresher.js';
import { validateOidcSettings } from '../../src/identity/oidc.js';
import { openSecretStore } from '../../src/identity/secret-store.js';
import { startOidcProvider, type TestOidcProvider } from '../helpers/oidc-provider.js';

interface LogLine {
  readonly level: string;
  readonly msg: string;
}

/** An in-memory AgentLog: the daemon's log interface, kept for the assertions. */
function memoryLog(lines: LogLine[]): AgentLog {
  const add = (level: string) => (msg: string): void => {
    lines.push({ level, msg });
  };
  return { debug: add('debug'), info: add('info'), warn: add('warn'), error: add('error'), close: () => Promise.resolve() };
}

async function waitFor(what: string, check: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

let op: TestOidcProvider;
let home: string;
let refresher: OauthRefresher | undefined;
const savedStore = process.env.CMDOP_SECRET_STORE;

beforeAll(async () => {
  // The 0600 file store: this test is about the refresher, the keyring has tests of its own.
  process.env.CMDOP_SECRET_STORE = 'file';
  op = await startOidcProvider();
});
afterAll(async () => {
  if (savedStore === undefined) delete process.env.CMDOP_SECRET_STORE;
  else process.env.CMDOP_SECRET_STORE = savedStore;
  await op.close();
});
beforeEach(() => {
  home = mkdtempSync(join(tmpdir(), 'cmdop-refresher-'));
});
afterEach(() => {
  refresher?.stop();
  refresher = undefined;
  rmSync(home, { recursive: true, force: true });
});

async function signIn(subject: string): Promise<void> {
  const settings = validateOidcSettings({ issuer: op.issuer, clientId: op.clientId, audience: op.audience });
  await login(home, settings, { prompt: (p) => void op.approve(p.userCode, subject) });
}

describe('the OAuth refresher', () => {
  it('refreshes ahead of expiry; after the provider refuses the refresh token it stops asking, until a new login', async () => {
    await signIn('alice');
    const lines: LogLine[] = [];
    // A lead longer than the token lives: every look finds the token due.
    refresher = startOauthRefresher({ home, log: memoryLog(lines), leadMs: 3_600_000, everyMs: 30 });
    await waitFor('a refresh', () => lines.some((l) => l.msg === 'refreshed the OAuth access token'));

    // The provider no longer knows the saved refresh token (as after a revocation there).
    const store = await openSecretStore({ home });
    await store.set(OAUTH_SERVICE, 'refresh_token', 'no-such-refresh-token');
    await waitFor('the refusal', () => lines.some((l) => l.level === 'warn'));
    const afterRefusal = op.tokenRequests;
    await new Promise((resolve) => setTimeout(resolve, 600)); // twenty looks
    expect(op.tokenRequests).toBe(afterRefusal);
    expect(lines.filter((l) => l.level === 'warn')).toHaveLength(1);

    // A new login is a new sign-in: the refresher takes it up again.
    const refreshedBefore = lines.filter((l) => l.msg === 'refreshed the OAuth access token').length;
    await signIn('alice');
    await waitFor('a refresh of the new login', () => lines.filter((l) => l.msg === 'refreshed the OAuth access token').length > refreshedBefore);
  });
});
