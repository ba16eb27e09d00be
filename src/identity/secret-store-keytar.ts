/**
 * The OS-keyring secret store (DESIGN.md §6) through keytar: the Secret Service on Linux
 * (gnome-keyring, KWallet), the Keychain on macOS, the Credential Manager on Windows.
 *
 * keytar is an optional dependency: its install needs libsecret headers and may fail, and its
 * use needs a running, unlocked Secret Service. {@link openKeyringSecretStore} loads it and
 * proves the keyring works (store, read back and remove a probe entry) before anyone relies on
 * it; when it does not, it says why instead of throwing, so the caller can fall back.
 */
import { CmdopError } from '../errors.js';
import type { SecretStore } from './secret-store.js';
import { assertSecretKey, assertSecretService, assertSecretValue } from './secret-store-file.js';

/** How long the probe may take before the keyring counts as absent. */
export const KEYRING_PROBE_TIMEOUT_MS = 2_000;
/** How long one keyring operation may take; a keyring waiting on an unlock prompt can take a while. */
const KEYRING_OP_TIMEOUT_MS = 30_000;
/** The entry the probe writes and removes; it never holds anything of value. */
const PROBE_SERVICE = 'cmdop-mesh-probe';
const PROBE_ACCOUNT = 'probe';

/** The part of keytar's API this module uses (declared here: keytar and its types may be absent). */
export interface Keytar {
  getPassword(service: string, account: string): Promise<string | null>;
  setPassword(service: string, account: string, password: string): Promise<void>;
  deletePassword(service: string, account: string): Promise<boolean>;
  findCredentials(service: string): Promise<{ account: string; password: string }[]>;
}

/** Options for {@link openKeyringSecretStore}. */
export interface KeyringSecretStoreOptions {
  /** Probe time limit in milliseconds (default {@link KEYRING_PROBE_TIMEOUT_MS}). */
  readonly probeTimeoutMs?: number;
  /** Why this store is being tried, for `cmdop doctor` (default: "the OS keyring answered"). */
  readonly reason?: string;
}

/** A working keyring store, or why there is none. */
export type KeyringOpenResult = { readonly ok: true; readonly store: SecretStore } | { readonly ok: false; readonly reason: string };

/** Loads keytar and probes the keyring; never throws. */
export async function openKeyringSecretStore(options: KeyringSecretStoreOptions = {}): Promise<KeyringOpenResult> {
  const loaded = await loadKeytar();
  if (!loaded.ok) return loaded;
  const keytar = loaded.keytar;
  const timeoutMs = options.probeTimeoutMs ?? KEYRING_PROBE_TIMEOUT_MS;
  const probe = async (): Promise<void> => {
    // A lookup first: without a session bus it fails at once, with a clear message.
    await keytar.findCredentials(PROBE_SERVICE);
    // Then a round trip: a Secret Service can answer lookups yet have no unlocked collection to store in.
    const value = `probe-${String(process.pid)}-${String(Date.now())}`;
    await keytar.setPassword(PROBE_SERVICE, PROBE_ACCOUNT, value);
    const back = await keytar.getPassword(PROBE_SERVICE, PROBE_ACCOUNT);
    await keytar.deletePassword(PROBE_SERVICE, PROBE_ACCOUNT);
    if (back !== value) throw new Error('a value stored in it did not read back');
  };
  try {
    await withTimeout(probe(), timeoutMs, () => new Error(`it did not answer within ${formatSeconds(timeoutMs)}`));
  } catch (error) {
    return { ok: false, reason: `the ${keyringName()} is not usable: ${errorText(error)}` };
  }
  return { ok: true, store: createKeyringSecretStore(keytar, options.reason ?? `the ${keyringName()} answered`) };
}

/** A store over an already loaded keytar; {@link openKeyringSecretStore} is the way to get one. */
export function createKeyringSecretStore(keytar: Keytar, reason: string): SecretStore {
  const call = async <T>(op: string, service: string, account: string | undefined, fn: () => Promise<T>, secret?: string): Promise<T> => {
    const entry = account === undefined ? service : `${service}/${account}`;
    try {
      return await withTimeout(fn(), KEYRING_OP_TIMEOUT_MS, () => new Error(`no answer within ${formatSeconds(KEYRING_OP_TIMEOUT_MS)} (is the keyring locked?)`));
    } catch (error) {
      // libsecret's messages do not quote secrets; redact anyway, the cost is nothing.
      const reason = redact(errorText(error), secret);
      throw new CmdopError('unavailable', `the ${keyringName()} could not ${op} ${entry}: ${reason}`, {
        hint: 'Unlock the keyring and try again, or set CMDOP_SECRET_STORE=file to keep secrets in CMDOP_HOME/secrets.json (0600).',
        details: { service, ...(account === undefined ? {} : { account }), store: 'keyring' },
      });
    }
  };
  return {
    kind: 'keyring',
    location: keyringName(),
    reason,
    async get(service, account) {
      assertSecretKey(service, account);
      return (await call('read', service, account, () => keytar.getPassword(service, account))) ?? undefined;
    },
    async set(service, account, secret) {
      assertSecretKey(service, account);
      assertSecretValue(service, account, secret);
      await call('store', service, account, () => keytar.setPassword(service, account, secret), secret);
    },
    async delete(service, account) {
      assertSecretKey(service, account);
      return call('delete', service, account, () => keytar.deletePassword(service, account));
    },
    async list(service) {
      assertSecretService(service);
      const found = await call('list', service, undefined, () => keytar.findCredentials(service));
      return found.map((credential) => credential.account).sort();
    },
  };
}

/** What the OS keyring is called on this platform, for messages and `cmdop doctor`. */
export function keyringName(platform: NodeJS.Platform = process.platform): string {
  if (platform === 'darwin') return 'macOS Keychain';
  if (platform === 'win32') return 'Windows Credential Manager';
  return 'OS keyring (Secret Service)';
}

async function loadKeytar(): Promise<{ ok: true; keytar: Keytar } | { ok: false; reason: string }> {
  // A variable specifier: TypeScript must not need keytar (or its types) where it failed to install.
  const specifier = 'keytar';
  let loaded: unknown;
  try {
    loaded = await import(specifier);
  } catch (error) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
    if (code === 'ERR_MODULE_NOT_FOUND') return { ok: false, reason: 'keytar is not installed (it needs libsecret-1-dev at npm install time)' };
    return { ok: false, reason: `keytar did not load: ${errorText(error)}` };
  }
  // keytar is CommonJS: its functions are on the default export.
  const candidate = isObject(loaded) && isObject(loaded.default) ? loaded.default : loaded;
  if (!isKeytar(candidate)) return { ok: false, reason: 'keytar loaded but does not have the expected functions' };
  return { ok: true, keytar: candidate };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return (typeof value === 'object' || typeof value === 'function') && value !== null;
}

function isKeytar(value: unknown): value is Keytar {
  return (
    isObject(value) &&
    typeof value.getPassword === 'function' &&
    typeof value.setPassword === 'function' &&
    typeof value.deletePassword === 'function' &&
    typeof value.findCredentials === 'function'
  );
}

async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(onTimeout());
    }, ms);
    // A keyring that never answers must not also keep the process alive through this timer.
    timer.unref();
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // One line: these end up in a one-line notice.
  return text.replace(/\s+/g, ' ').trim();
}

function redact(text: string, secret: string | undefined): string {
  return secret === undefined || secret === '' ? text : text.split(secret).join('[redacted]');
}

function formatSeconds(ms: number): string {
  return `${String(Math.round(ms / 100) / 10)} s`;
}
