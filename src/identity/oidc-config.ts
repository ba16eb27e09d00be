/**
 * The workspace's OpenID provider, as `cmdop workspace oidc set` records it in
 * `CMDOP_HOME/oidc.json` (0600): the issuer, the client id devices log in with, and the audience
 * access tokens must carry. On the CA host this is the workspace's setting, sent to every host
 * with the announce replies; on any other machine it only says where `cmdop login` goes.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { ensureCmdopHome } from '../config/cmdop-home.js';
import { updateStateFile } from '../config/file-lock.js';
import { parseJsonState } from '../config/json-file.js';
import { readSecureFile } from '../config/secure-file.js';
import { createStatCache } from '../config/stat-cache.js';
import { CmdopError } from '../errors.js';

/** The workspace's OpenID provider: where users log in, and what their access tokens must name. */
export interface OidcConfig {
  readonly issuer: string;
  readonly client_id: string;
  /** The audience access tokens must carry; null: the client id. */
  readonly audience: string | null;
}

const schema = z
  .object({
    version: z.literal(1),
    issuer: z.string().url().max(2048),
    client_id: z.string().min(1).max(256),
    audience: z.string().min(1).max(512).nullable(),
    updated_at: z.string(),
  })
  .strict();

/** The file of a cmdop home. */
export function oidcConfigPath(home: string): string {
  return join(home, 'oidc.json');
}

/** Parses an oidc.json text; CmdopError('config') naming the file when it is not one. */
export function parseOidcConfig(path: string, text: string | undefined): OidcConfig | null {
  if (text === undefined) return null;
  const { issuer, client_id: clientId, audience } = parseJsonState(text, schema, (cause) => damaged(path, cause));
  return Object.freeze({ issuer, client_id: clientId, audience });
}

const cache = createStatCache(async (file) => parseOidcConfig(file, await readSecureFile(file)));

/** The provider recorded in this home, or null; re-read only when the file changed. */
export async function readOidcConfig(home: string): Promise<OidcConfig | null> {
  return cache.read(oidcConfigPath(home));
}

/** Records the provider (already validated by the caller). */
export async function writeOidcConfig(home: string, config: OidcConfig): Promise<void> {
  await ensureCmdopHome(home);
  const doc = { version: 1, issuer: config.issuer, client_id: config.client_id, audience: config.audience, updated_at: new Date().toISOString() };
  await updateStateFile(oidcConfigPath(home), () => `${JSON.stringify(doc, null, 2)}\n`);
}

function damaged(path: string, cause: unknown): CmdopError {
  return new CmdopError('config', `${path} is damaged: it is not a cmdop OpenID provider setting`, {
    cause,
    hint: 'Set the provider again with `cmdop workspace oidc set --issuer URL --client-id ID`.',
    details: { path },
  });
}
