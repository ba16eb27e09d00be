/**
 * Workspace API keys kept on a machine that calls hosts with them (`cmdop connect key set`):
 * the key itself in the OS keyring, or in `CMDOP_HOME/ssh_workspaces.json` (0600) where there is
 * none; what is not secret (the workspace, the key's name and id, the CA it trusts, which
 * workspace is active) in `CMDOP_HOME/workspaces.json` (0600).
 */
import { join } from 'node:path';
import { z } from 'zod';
import { ensureCmdopHome } from '../config/cmdop-home.js';
import { updateStateFile } from '../config/file-lock.js';
import { parseJsonState } from '../config/json-file.js';
import { readSecureFile } from '../config/secure-file.js';
import { CmdopError } from '../errors.js';
import { parseApiKey } from '../identity/api-key.js';
import { openSecretStore, type SecretStore } from '../identity/secret-store.js';

/** The keyring service API keys are stored under; the account is the workspace name. */
export const API_KEY_SERVICE = 'cmdop-workspace-key';
/** The fallback file for API keys where no OS keyring is available (DESIGN.md §5). */
export const API_KEY_FILE = 'ssh_workspaces.json';

/** As `cmdop workspace init` allows them: letters, digits, space, `.`, `_`, `-`; 1 to 64 characters. */
const WORKSPACE_NAME = /^[\p{L}\p{N}](?:[\p{L}\p{N} ._-]{0,62}[\p{L}\p{N}])?$/u;

/** What is kept about one workspace's key, besides the key. */
export interface StoredWorkspace {
  readonly name: string;
  readonly key_id: string;
  readonly key_name: string;
  readonly ca_fingerprint: string;
  readonly ca_host: string | null;
  readonly ca_address: string | null;
  readonly expires_at: string | null;
  readonly saved_at: string;
}

const entrySchema = z
  .object({
    name: z.string().regex(WORKSPACE_NAME),
    key_id: z.string(),
    key_name: z.string(),
    ca_fingerprint: z.string().regex(/^[0-9a-f]{64}$/),
    ca_host: z.string().nullable(),
    ca_address: z.string().nullable(),
    expires_at: z.string().nullable(),
    saved_at: z.string(),
  })
  .strict();
const fileSchema = z.object({ version: z.literal(1), active: z.string().nullable(), workspaces: z.array(entrySchema) }).strict();

/** The workspaces known here and which one is active. */
export interface WorkspaceBook {
  readonly active: string | null;
  readonly workspaces: readonly StoredWorkspace[];
}

export function workspacesPath(home: string): string {
  return join(home, 'workspaces.json');
}

/** Opens the store API keys live in (the OS keyring, else ssh_workspaces.json); `notice` gets the fallback line. */
export function openKeyStore(home: string, notice?: (line: string) => void): Promise<SecretStore> {
  return openSecretStore({ home, fileName: API_KEY_FILE, ...(notice === undefined ? {} : { notice }) });
}

/** Checks a workspace name given with --workspace. */
export function validateWorkspaceName(name: string): string {
  if (!WORKSPACE_NAME.test(name)) {
    throw new CmdopError('invalid_input', `${JSON.stringify(name.slice(0, 80))} is not a workspace name: use 1 to 64 letters, digits, spaces, ".", "_" or "-"`, {
      hint: 'See the workspaces with keys here with `cmdop whoami --json`.',
    });
  }
  return name;
}

export async function readWorkspaceBook(home: string): Promise<WorkspaceBook> {
  const path = workspacesPath(home);
  return parseBook(path, await readSecureFile(path));
}

/**
 * Stores `key` for its workspace (`workspace` when given, else the name the key carries) and
 * makes that workspace the active one. The key is checked for form only; the hosts verify it.
 */
export async function saveWorkspaceKey(home: string, key: string, options: { workspace?: string | undefined; notice?: (line: string) => void; now?: Date }): Promise<{ entry: StoredWorkspace; store: SecretStore }> {
  const claims = parseApiKey(key);
  const name = options.workspace ?? claims.workspace;
  if (name === undefined) {
    throw new CmdopError('invalid_input', 'this API key does not say which workspace it is for', { hint: 'Name it: cmdop connect key set KEY --workspace NAME' });
  }
  validateWorkspaceName(name);
  const entry: StoredWorkspace = {
    name,
    key_id: claims.id,
    key_name: claims.name,
    ca_fingerprint: claims.caFingerprint,
    ca_host: claims.caHost ?? null,
    ca_address: claims.caAddress ?? null,
    expires_at: claims.expiresAt?.toISOString() ?? null,
    saved_at: (options.now ?? new Date()).toISOString(),
  };
  await ensureCmdopHome(home);
  const store = await openKeyStore(home, options.notice);
  await store.set(API_KEY_SERVICE, name, key.trim());
  const path = workspacesPath(home);
  await updateStateFile(path, (current) => {
    const book = parseBook(path, current);
    const workspaces = [...book.workspaces.filter((w) => w.name !== name), entry].sort((a, b) => a.name.localeCompare(b.name));
    return `${JSON.stringify({ version: 1, active: name, workspaces }, null, 2)}\n`;
  });
  return { entry, store };
}

/** The stored key of workspace `name`, with what is known about it; undefined when there is none. */
export async function loadWorkspaceKey(home: string, name: string, notice?: (line: string) => void): Promise<{ entry: StoredWorkspace; key: string } | undefined> {
  const book = await readWorkspaceBook(home);
  const entry = book.workspaces.find((w) => w.name === name);
  if (entry === undefined) return undefined;
  const key = await (await openKeyStore(home, notice)).get(API_KEY_SERVICE, name);
  if (key === undefined) {
    throw new CmdopError('config', `the API key of workspace "${name}" is missing from the secret store`, {
      hint: `Store it again with \`cmdop connect key set KEY --workspace ${name}\`.`,
      details: { workspace: name },
    });
  }
  return { entry, key };
}

function parseBook(path: string, text: string | undefined): WorkspaceBook {
  if (text === undefined) return { active: null, workspaces: [] };
  return parseJsonState(text, fileSchema, (cause) => damaged(path, cause));
}

function damaged(path: string, cause: unknown): CmdopError {
  return new CmdopError('config', `${path} is damaged: it is not a cmdop workspace list`, {
    cause,
    hint: 'Move it away and store your keys again with `cmdop connect key set KEY`.',
    details: { path },
  });
}
