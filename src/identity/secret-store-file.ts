/**
 * The fallback secret store (DESIGN.md §5, §6): one JSON file, `CMDOP_HOME/secrets.json`, mode
 * 0600. It is read only through readSecureFile (a loose, foreign-owned or symlinked file is
 * refused) and changed only through updateStateFile (lock, re-read, atomic replace), so
 * concurrent `cmdop` processes never lose each other's changes.
 *
 * No message this module produces carries a secret or any part of the file's content.
 */
import { join } from 'node:path';
import { ensureCmdopHome } from '../config/cmdop-home.js';
import { updateStateFile } from '../config/file-lock.js';
import { readSecureFile } from '../config/secure-file.js';
import { CmdopError } from '../errors.js';
import type { SecretStore } from './secret-store.js';

/** Service and account names longer than this are refused. */
const MAX_NAME_LENGTH = 256;
/** Secrets larger than this are refused: API keys and tokens are far smaller. */
const MAX_SECRET_LENGTH = 16 * 1024;

/** Options for {@link createFileSecretStore}. */
export interface FileSecretStoreOptions {
  /** The state directory (`CMDOP_HOME`); the file is `secrets.json` in it. */
  readonly home: string;
  /** Why this store was chosen, for `cmdop doctor` (default: "chosen explicitly"). */
  readonly reason?: string;
  /** The file's name in `home` (default `secrets.json`; workspace API keys use `ssh_workspaces.json`). */
  readonly fileName?: string;
}

/** The secrets file, `secrets.json` by default (mode 0600). */
export function secretsPath(home: string, fileName = 'secrets.json'): string {
  return join(home, fileName);
}

/** The file store over `CMDOP_HOME/secrets.json`; nothing is created until the first `set`. */
export function createFileSecretStore(options: FileSecretStoreOptions): SecretStore {
  const { home } = options;
  const path = secretsPath(home, options.fileName);
  const read = async (): Promise<SecretMap> => parseSecrets(path, await readSecureFile(path));
  const change = async <T>(fn: (secrets: SecretMap) => T): Promise<T> => {
    // updateStateFile runs the transform exactly once, under the lock, or throws.
    let result: T | undefined;
    await updateStateFile(path, (current) => {
      const secrets = parseSecrets(path, current);
      result = fn(secrets);
      return serializeSecrets(secrets);
    });
    return result as T;
  };

  return {
    kind: 'file',
    location: path,
    reason: options.reason ?? 'chosen explicitly',
    async get(service, account) {
      assertSecretKey(service, account);
      return (await read()).get(service)?.get(account);
    },
    async set(service, account, secret) {
      assertSecretKey(service, account);
      assertSecretValue(service, account, secret);
      await ensureCmdopHome(home);
      await change((secrets) => {
        const accounts = secrets.get(service) ?? new Map<string, string>();
        accounts.set(account, secret);
        secrets.set(service, accounts);
      });
    },
    async delete(service, account) {
      assertSecretKey(service, account);
      // Nothing to delete, and no directory or lock to create, when the file is not there.
      if ((await readSecureFile(path)) === undefined) return false;
      return change((secrets) => {
        const accounts = secrets.get(service);
        const deleted = accounts?.delete(account) ?? false;
        if (accounts?.size === 0) secrets.delete(service);
        return deleted;
      });
    },
    async list(service) {
      assertSecretService(service);
      return [...((await read()).get(service)?.keys() ?? [])].sort();
    },
  };
}

/** Refuses an empty or oversized service or account name; the message names them, never a secret. */
export function assertSecretKey(service: string, account: string): void {
  assertSecretService(service);
  assertName('account', account);
}

/** Refuses an empty or oversized service name. */
export function assertSecretService(service: string): void {
  assertName('service', service);
}

/** Refuses an empty or oversized secret; the message says which entry, never what the secret is. */
export function assertSecretValue(service: string, account: string, secret: string): void {
  // The types say string; a caller in plain JavaScript may still pass something else.
  if (typeof secret !== 'string' || secret === '') {
    throw new CmdopError('invalid_input', `the secret for ${service}/${account} is empty or not a string`, {
      hint: 'To remove a secret, delete it instead of setting it to nothing.',
      details: { service, account },
    });
  }
  if (secret.length > MAX_SECRET_LENGTH) {
    throw new CmdopError('invalid_input', `the secret for ${service}/${account} is longer than ${MAX_SECRET_LENGTH} characters`, {
      hint: 'Secrets are API keys and tokens; check what is being stored.',
      details: { service, account, maxLength: MAX_SECRET_LENGTH },
    });
  }
}

function assertName(what: 'service' | 'account', name: string): void {
  if (typeof name !== 'string' || name === '' || name.length > MAX_NAME_LENGTH) {
    throw new CmdopError('invalid_input', `a secret's ${what} name must be 1 to ${MAX_NAME_LENGTH} characters`, {
      details: { [what]: typeof name === 'string' ? name.slice(0, MAX_NAME_LENGTH) : typeof name },
    });
  }
}

/** service → account → secret; Maps, so names such as `__proto__` are plain keys. */
type SecretMap = Map<string, Map<string, string>>;

function parseSecrets(path: string, text: string | undefined): SecretMap {
  const secrets: SecretMap = new Map();
  if (text === undefined) return secrets;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // No cause and no parser message: both quote the file's content, which holds secrets.
    throw malformed(path, 'it is not valid JSON');
  }
  if (!isRecord(doc) || doc.version !== 1 || !isRecord(doc.services)) {
    throw malformed(path, 'it is not a version 1 secrets file ({"version": 1, "services": {...}})');
  }
  for (const [service, accounts] of Object.entries(doc.services)) {
    if (!isRecord(accounts)) throw malformed(path, `the entry for service "${service}" is not an object`);
    const map = new Map<string, string>();
    for (const [account, secret] of Object.entries(accounts)) {
      if (typeof secret !== 'string') throw malformed(path, `the secret for ${service}/${account} is not a string`);
      map.set(account, secret);
    }
    if (map.size > 0) secrets.set(service, map);
  }
  return secrets;
}

function serializeSecrets(secrets: SecretMap): string {
  // Object.fromEntries defines own properties, so a `__proto__` name survives as a key.
  const services = Object.fromEntries([...secrets].map(([service, accounts]) => [service, Object.fromEntries(accounts)]));
  return `${JSON.stringify({ version: 1, services }, null, 2)}\n`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function malformed(path: string, what: string): CmdopError {
  return new CmdopError('config', `${path} cannot be read as a secrets file: ${what}`, {
    hint: `Move it away (mv ${path} ${path}.bad) and store the secrets again; cmdop does not guess at a damaged secrets file.`,
    details: { path },
  });
}
