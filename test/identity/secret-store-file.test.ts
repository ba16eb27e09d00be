import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { inspect } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import { createFileSecretStore, openSecretStore, secretsPath, type SecretStore } from '../../src/identity/secret-store.js';
import { assertBuilt, REPO_ROOT } from '../helpers/run-cmdop.js';

const SECRET = 'cmdop_sk_live_7f3a9c1e5b2d4680aa11bb22cc33dd44';

let dir: string;
let home: string;
let store: SecretStore;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cmdop-secrets-'));
  home = join(dir, 'home');
  store = createFileSecretStore({ home });
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The error `promise` rejects with, which must be a CmdopError. */
async function rejection(attempt: Promise<unknown> | (() => Promise<unknown>)): Promise<CmdopError> {
  try {
    await (typeof attempt === 'function' ? attempt() : attempt);
  } catch (error) {
    expect(error).toBeInstanceOf(CmdopError);
    return error as CmdopError;
  }
  throw new Error('expected the promise to reject');
}

/** Everything an error could show a user or a log: message, hint, details, stack, the cause chain. */
function everythingShown(error: CmdopError): string {
  const parts: string[] = [error.message, error.hint ?? '', JSON.stringify(error.details ?? {}), error.stack ?? ''];
  let cause: unknown = error.cause;
  while (cause !== undefined) {
    parts.push(cause instanceof Error ? `${cause.message}\n${cause.stack ?? ''}` : inspect(cause));
    cause = cause instanceof Error ? cause.cause : undefined;
  }
  return parts.join('\n');
}

describe('file secret store', () => {
  it('sets, gets, lists and deletes, in a 0600 file inside a 0700 CMDOP_HOME it creates', async () => {
    expect(store.kind).toBe('file');
    expect(store.location).toBe(join(home, 'secrets.json'));
    expect(await store.get('cmdop', 'alice')).toBeUndefined();
    expect(await store.list('cmdop')).toEqual([]);
    expect(await store.delete('cmdop', 'alice')).toBe(false);
    expect(existsSync(home)).toBe(false);

    await store.set('cmdop', 'bob', 'second');
    await store.set('cmdop', 'alice', SECRET);
    await store.set('other', 'alice', 'elsewhere');
    expect(statSync(home).mode & 0o777).toBe(0o700);
    expect(statSync(secretsPath(home)).mode & 0o777).toBe(0o600);
    expect(await store.get('cmdop', 'alice')).toBe(SECRET);
    expect(await store.list('cmdop')).toEqual(['alice', 'bob']);
    expect(await store.list('other')).toEqual(['alice']);

    await store.set('cmdop', 'alice', 'replaced');
    expect(await store.get('cmdop', 'alice')).toBe('replaced');
    expect(await store.delete('cmdop', 'alice')).toBe(true);
    expect(await store.delete('cmdop', 'alice')).toBe(false);
    expect(await store.get('cmdop', 'alice')).toBeUndefined();
    expect(await store.list('cmdop')).toEqual(['bob']);
    expect(await store.delete('cmdop', 'bob')).toBe(true);
    expect(await store.list('cmdop')).toEqual([]);
    expect(JSON.parse(readFileSync(secretsPath(home), 'utf8'))).toEqual({ version: 1, services: { other: { alice: 'elsewhere' } } });
  });

  it('keeps names such as __proto__ and constructor as plain keys', async () => {
    await store.set('__proto__', 'constructor', 'a');
    await store.set('svc', '__proto__', 'b');
    const reopened = createFileSecretStore({ home });
    expect(await reopened.get('__proto__', 'constructor')).toBe('a');
    expect(await reopened.get('svc', '__proto__')).toBe('b');
    expect(await reopened.list('svc')).toEqual(['__proto__']);
    expect(await reopened.get('svc', 'toString')).toBeUndefined();
  });

  it('refuses a secrets file group or others can read, naming the fix and never the secret', async () => {
    await store.set('cmdop', 'alice', SECRET);
    chmodSync(secretsPath(home), 0o644);
    for (const attempt of [() => store.get('cmdop', 'alice'), () => store.list('cmdop'), () => store.set('cmdop', 'bob', 'x'), () => store.delete('cmdop', 'alice')]) {
      const error = await rejection(attempt);
      expect(error.code).toBe('config');
      expect(error.exitCode).toBe(6);
      expect(error.message).toContain('mode 0644');
      expect(error.hint).toBe(`Run: chmod 600 ${secretsPath(home)}`);
      expect(everythingShown(error)).not.toContain(SECRET);
    }
    // Nothing was changed while refusing.
    chmodSync(secretsPath(home), 0o600);
    expect(await store.list('cmdop')).toEqual(['alice']);
  });

  it('refuses a secrets file reached through a symbolic link', async () => {
    const elsewhere = join(dir, 'elsewhere.json');
    writeFileSync(elsewhere, JSON.stringify({ version: 1, services: { cmdop: { alice: SECRET } } }), { mode: 0o600 });
    mkdirSync(home, { mode: 0o700 });
    symlinkSync(elsewhere, secretsPath(home));
    for (const attempt of [() => store.get('cmdop', 'alice'), () => store.set('cmdop', 'bob', 'x')]) {
      const error = await rejection(attempt);
      expect(error.code).toBe('config');
      expect(error.message).toContain('is a symbolic link');
      expect(everythingShown(error)).not.toContain(SECRET);
    }
    expect(JSON.parse(readFileSync(elsewhere, 'utf8'))).toEqual({ version: 1, services: { cmdop: { alice: SECRET } } });
  });

  it.runIf(process.getuid?.() === 0)('refuses a secrets file owned by another user', async () => {
    await store.set('cmdop', 'alice', SECRET);
    chownSync(secretsPath(home), 4321, 4321);
    const error = await rejection(store.get('cmdop', 'alice'));
    expect(error.code).toBe('config');
    expect(error.message).toContain('owned by uid 4321');
    expect(everythingShown(error)).not.toContain(SECRET);
  });

  it.each([
    ['broken JSON', `{"version": 1, "services": {"cmdop": {"alice": "${SECRET}"`],
    ['a secret that is not a string', `{"version": 1, "services": {"cmdop": {"alice": ["${SECRET}"]}}}`],
    ['a wrong version', `{"version": 2, "services": {"cmdop": {"alice": "${SECRET}"}}}`],
    ['a bare value', `"${SECRET}"`],
  ])('refuses a damaged file (%s) without quoting it', async (_name, content) => {
    mkdirSync(home, { mode: 0o700 });
    writeFileSync(secretsPath(home), content, { mode: 0o600 });
    for (const attempt of [() => store.get('cmdop', 'alice'), () => store.set('cmdop', 'bob', 'x')]) {
      const error = await rejection(attempt);
      expect(error.code).toBe('config');
      expect(error.message).toContain('cannot be read as a secrets file');
      expect(error.hint).toContain(`mv ${secretsPath(home)} ${secretsPath(home)}.bad`);
      expect(everythingShown(error)).not.toContain(SECRET);
    }
    expect(readFileSync(secretsPath(home), 'utf8')).toBe(content);
  });

  it('refuses bad names and secrets as invalid input, never quoting the secret', async () => {
    const cases: [() => Promise<unknown>, RegExp][] = [
      [() => store.set('cmdop', '', SECRET), /account name must be 1 to 256 characters/],
      [() => store.set('', 'alice', SECRET), /service name must be 1 to 256 characters/],
      [() => store.set('cmdop', 'a'.repeat(257), SECRET), /account name/],
      [() => store.set('cmdop', 'alice', ''), /the secret for cmdop\/alice is empty/],
      [() => store.set('cmdop', 'alice', SECRET.repeat(1000)), /the secret for cmdop\/alice is longer than 16384 characters/],
      [() => store.get('cmdop', ''), /account name/],
      [() => store.list(''), /service name/],
    ];
    for (const [attempt, message] of cases) {
      const error = await rejection(attempt);
      expect(error.code).toBe('invalid_input');
      expect(error.message).toMatch(message);
      expect(everythingShown(error)).not.toContain(SECRET);
    }
    expect(existsSync(secretsPath(home))).toBe(false);
  });

  it('loses no update when many writers change the file at once (one process)', async () => {
    const stores = [store, createFileSecretStore({ home }), createFileSecretStore({ home })];
    await store.set('cmdop', 'doomed-0', 'x');
    await store.set('cmdop', 'doomed-1', 'x');
    await Promise.all([
      ...Array.from({ length: 40 }, (_, i) => stores[i % stores.length]!.set('cmdop', `account-${String(i).padStart(2, '0')}`, `secret-${i}`)),
      stores[1]!.delete('cmdop', 'doomed-0'),
      stores[2]!.delete('cmdop', 'doomed-1'),
    ]);
    const accounts = await store.list('cmdop');
    expect(accounts).toEqual(Array.from({ length: 40 }, (_, i) => `account-${String(i).padStart(2, '0')}`));
    expect(await store.get('cmdop', 'account-17')).toBe('secret-17');
    expect(statSync(secretsPath(home)).mode & 0o777).toBe(0o600);
  });

  it('loses no update when several processes write at once', async () => {
    assertBuilt();
    const module = pathToFileURL(join(REPO_ROOT, 'dist', 'src', 'identity', 'secret-store.js')).href;
    const script = join(dir, 'writer.mjs');
    writeFileSync(
      script,
      [
        `import { createFileSecretStore } from ${JSON.stringify(module)};`,
        `const store = createFileSecretStore({ home: process.argv[2] });`,
        `const writer = process.argv[3];`,
        `await Promise.all(Array.from({ length: 10 }, (_, i) => store.set('cmdop', writer + '-' + i, 'secret-' + writer + '-' + i)));`,
      ].join('\n'),
    );
    const writers = ['w0', 'w1', 'w2', 'w3'];
    const results = await Promise.all(
      writers.map(
        (writer) =>
          new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
            const child = spawn(process.execPath, [script, home, writer], { stdio: ['ignore', 'ignore', 'pipe'] });
            let stderr = '';
            child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
            child.on('error', reject);
            child.on('close', (code) => {
              resolve({ code, stderr });
            });
          }),
      ),
    );
    expect(results).toEqual(writers.map(() => ({ code: 0, stderr: '' })));
    const accounts = await store.list('cmdop');
    expect(accounts).toHaveLength(40);
    expect(accounts).toEqual(writers.flatMap((w) => Array.from({ length: 10 }, (_, i) => `${w}-${i}`)).sort());
    expect(await store.get('cmdop', 'w3-9')).toBe('secret-w3-9');
  });
});

describe('openSecretStore choosing the file store', () => {
  it('uses the file store without a notice when CMDOP_SECRET_STORE=file or prefer is file', async () => {
    const notices: string[] = [];
    const forced = await openSecretStore({ home, env: { CMDOP_SECRET_STORE: 'file' }, notice: (line) => notices.push(line) });
    expect([forced.kind, forced.location, forced.reason]).toEqual(['file', secretsPath(home), 'CMDOP_SECRET_STORE=file']);
    const preferred = await openSecretStore({ home, env: {}, prefer: 'file', notice: (line) => notices.push(line) });
    expect([preferred.kind, preferred.reason]).toEqual(['file', 'the file store was asked for']);
    expect(notices).toEqual([]);
  });

  it('refuses an unknown CMDOP_SECRET_STORE as a configuration error', async () => {
    const error = await rejection(openSecretStore({ home, env: { CMDOP_SECRET_STORE: 'vault' } }));
    expect(error.code).toBe('config');
    expect(error.message).toBe('CMDOP_SECRET_STORE is "vault"; it must be "keyring" or "file"');
  });
});
