/**
 * Where cmdop keeps secrets (API keys, OAuth tokens; DESIGN.md §6): one {@link SecretStore}
 * interface with two implementations, the OS keyring through keytar and a 0600 file under
 * `CMDOP_HOME`. {@link openSecretStore} picks one, and says so when it has to fall back.
 *
 * Secrets never appear in a message, a log line or `--json` output; errors name the service
 * and account only.
 */
import { CmdopError } from '../errors.js';
import { createFileSecretStore, secretsPath } from './secret-store-file.js';
import { openKeyringSecretStore } from './secret-store-keytar.js';

export { createFileSecretStore, secretsPath, type FileSecretStoreOptions } from './secret-store-file.js';
export { KEYRING_PROBE_TIMEOUT_MS, keyringName, openKeyringSecretStore, type KeyringOpenResult, type KeyringSecretStoreOptions } from './secret-store-keytar.js';

/** The two kinds of store. */
export type SecretStoreKind = 'keyring' | 'file';

/** A place for secrets, addressed by service and account (the keyring's own model). */
export interface SecretStore {
  readonly kind: SecretStoreKind;
  /** Where the secrets are: the keyring's name, or the file's path. */
  readonly location: string;
  /** Why this store is the one in use, for `cmdop doctor`. */
  readonly reason: string;
  /** The secret, or undefined when there is none. */
  get(service: string, account: string): Promise<string | undefined>;
  /** Stores or replaces the secret. */
  set(service: string, account: string, secret: string): Promise<void>;
  /** Removes the secret; false when there was none. */
  delete(service: string, account: string): Promise<boolean>;
  /** The accounts that have a secret under this service, sorted. */
  list(service: string): Promise<string[]>;
}

/** Options for {@link openSecretStore}. */
export interface OpenSecretStoreOptions {
  /** The state directory (`CMDOP_HOME`), home of the file store. */
  readonly home: string;
  /** Which store to try first (default 'keyring'); `CMDOP_SECRET_STORE` overrides it. */
  readonly prefer?: SecretStoreKind;
  /** Receives the one-line notice when the keyring is wanted but not available. */
  readonly notice?: (line: string) => void;
  /** Where `CMDOP_SECRET_STORE` is read from (default process.env). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Keyring probe time limit in milliseconds (default 2 s). */
  readonly probeTimeoutMs?: number;
  /** The fallback file's name in `home` (default `secrets.json`). */
  readonly fileName?: string;
}

/**
 * Opens the secret store: the OS keyring when keytar loads and a Secret Service answers, else
 * the file store with one notice line. `CMDOP_SECRET_STORE=file|keyring` forces one; a forced
 * keyring that is not available is a CmdopError('config') saying why.
 */
export async function openSecretStore(options: OpenSecretStoreOptions): Promise<SecretStore> {
  const env = options.env ?? process.env;
  const forced = parseForced(env.CMDOP_SECRET_STORE);
  const want = forced ?? options.prefer ?? 'keyring';
  const file = secretsPath(options.home, options.fileName);
  const fileName = options.fileName === undefined ? {} : { fileName: options.fileName };
  if (want === 'file') {
    return createFileSecretStore({ home: options.home, reason: forced === undefined ? 'the file store was asked for' : 'CMDOP_SECRET_STORE=file', ...fileName });
  }
  const keyring = await openKeyringSecretStore({
    ...(options.probeTimeoutMs === undefined ? {} : { probeTimeoutMs: options.probeTimeoutMs }),
    ...(forced === undefined ? {} : { reason: 'CMDOP_SECRET_STORE=keyring' }),
  });
  if (keyring.ok) return keyring.store;
  if (forced !== undefined) {
    throw new CmdopError('config', `CMDOP_SECRET_STORE=keyring, but no OS keyring is available: ${keyring.reason}`, {
      hint: `Start and unlock a Secret Service (gnome-keyring, KWallet), or unset CMDOP_SECRET_STORE to keep secrets in ${file} (0600).`,
      details: { store: 'keyring', reason: keyring.reason },
    });
  }
  const reason = `no OS keyring available (${keyring.reason})`;
  options.notice?.(`${reason}; secrets are kept in ${file} (0600)`);
  return createFileSecretStore({ home: options.home, reason, ...fileName });
}

function parseForced(value: string | undefined): SecretStoreKind | undefined {
  const trimmed = value?.trim().toLowerCase();
  if (trimmed === undefined || trimmed === '') return undefined;
  if (trimmed === 'keyring' || trimmed === 'file') return trimmed;
  throw new CmdopError('config', `CMDOP_SECRET_STORE is "${value ?? ''}"; it must be "keyring" or "file"`, {
    hint: 'Set CMDOP_SECRET_STORE=file or CMDOP_SECRET_STORE=keyring, or unset it to let cmdop choose.',
    details: { variable: 'CMDOP_SECRET_STORE', value: value ?? '' },
  });
}
