/**
 * Which credential a `cmdop` command calls hosts with (issue 4 §1), in this order:
 *   1. `--share TOKEN` (a guest; given on purpose, so nothing else is looked at),
 *   2. `--api-key KEY`, 3. `CMDOP_API_KEY`, 4. `--workspace NAME` (its stored key),
 *   5. the active workspace (the key stored last with `cmdop connect key set`),
 *   6. OAuth (after `cmdop login`),
 *   7. this host's own certificate, through the local daemon (a host of a workspace).
 * Explicit beats implicit; `cmdop whoami --json` shows the choice and why the earlier ones
 * were passed over. The credential itself never leaves this module except to the host called.
 */
import { CmdopError } from '../errors.js';
import { parseApiKey } from '../identity/api-key.js';
import { parseShareToken } from '../identity/share-link.js';
import { loadMembership } from '../daemon/membership.js';
import { join } from 'node:path';
import { readSecureFile } from '../config/secure-file.js';
import { CA_CERT_FILE, caFingerprint, tlsDir } from '../identity/workspace-ca.js';
import { oauthStatus, oauthAccessToken } from './oauth-session.js';
import { loadWorkspaceKey, readWorkspaceBook, validateWorkspaceName } from './workspace-keys.js';

/** Where the credential came from. */
export type CredentialSource = 'share' | 'flag' | 'env' | 'workspace' | 'active_workspace' | 'oauth' | 'host';

/** The credential chosen, described without the secret. */
export interface CredentialChoice {
  readonly source: CredentialSource;
  /** Why this source won, in words. */
  readonly why: string;
  readonly kind: 'api_key' | 'oauth' | 'share' | 'host';
  /** Who the hosts will see: `key:NAME`, `user:SUBJECT`, `guest:ID`, `host:NAME`; null when not known here. */
  readonly principal: string | null;
  readonly workspace: string | null;
  /** The workspace CA hosts must chain to; null for `host` (the daemon knows) and `none`. */
  readonly ca_fingerprint: string | null;
  /** The CA host, where the roster can be asked for (API keys, OAuth on a host). */
  readonly ca_host: string | null;
  readonly ca_address: string | null;
  /** A share token: the one host it opens, and its address. */
  readonly share_host: string | null;
  readonly share_address: string | null;
  /** Sources looked at first and passed over, and why. */
  readonly passed_over: readonly string[];
}

/** A choice and, for the bearer kinds, how to get the credential (not part of the JSON). */
export interface ResolvedCredential {
  readonly choice: CredentialChoice;
  readonly bearer?: () => Promise<string>;
}

/** What the command line said. */
export interface CredentialFlags {
  readonly home: string;
  readonly apiKey?: string | undefined;
  readonly share?: string | undefined;
  readonly workspace?: string | undefined;
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Receives the one-line notice when no OS keyring is available. */
  readonly notice?: (line: string) => void;
}

const EMPTY = { principal: null, workspace: null, ca_fingerprint: null, ca_host: null, ca_address: null, share_host: null, share_address: null } as const;

export async function resolveCredential(flags: CredentialFlags): Promise<ResolvedCredential> {
  const env = flags.env ?? process.env;
  const passed: string[] = [];
  if (flags.share !== undefined) {
    const claims = parseShareToken(flags.share);
    const token = flags.share.trim();
    return {
      choice: {
        ...EMPTY,
        source: 'share',
        why: '--share was given: the call is made as a guest of the one host the token opens',
        kind: 'share',
        principal: `guest:${claims.id}`,
        ca_fingerprint: claims.caFingerprint,
        share_host: claims.host,
        share_address: claims.address,
        passed_over: [],
      },
      bearer: () => Promise.resolve(token),
    };
  }
  if (flags.apiKey !== undefined) return apiKeyChoice(flags.apiKey, 'flag', '--api-key was given', passed);
  passed.push('--api-key: not given');
  const fromEnv = env.CMDOP_API_KEY?.trim();
  if (fromEnv !== undefined && fromEnv !== '') return apiKeyChoice(fromEnv, 'env', 'CMDOP_API_KEY is set', passed);
  passed.push('CMDOP_API_KEY: not set');
  if (flags.workspace !== undefined) {
    const name = validateWorkspaceName(flags.workspace);
    const stored = await loadWorkspaceKey(flags.home, name, flags.notice);
    if (stored === undefined) {
      throw new CmdopError('not_found', `no API key is stored for workspace "${name}"`, {
        hint: `Store one with \`cmdop connect key set KEY --workspace ${name}\`, or leave --workspace out.`,
        details: { workspace: name },
      });
    }
    return apiKeyChoice(stored.key, 'workspace', `--workspace ${name} was given and its key is stored`, passed, name);
  }
  passed.push('--workspace: not given');
  const book = await readWorkspaceBook(flags.home);
  if (book.active !== null) {
    const stored = await loadWorkspaceKey(flags.home, book.active, flags.notice);
    if (stored !== undefined) return apiKeyChoice(stored.key, 'active_workspace', `"${book.active}" is the active workspace (its key was stored last with \`cmdop connect key set\`)`, passed, book.active);
  }
  passed.push('active workspace: no API key stored here');
  const oauth = await oauthStatus(flags.home);
  if (oauth.logged_in) {
    const workspace = await hostWorkspace(flags.home);
    if (workspace === undefined) {
      passed.push('OAuth: logged in, but this machine is not a host of a workspace, so the hosts cannot be verified');
    } else {
      return {
        choice: {
          ...EMPTY,
          source: 'oauth',
          why: `logged in with OAuth at ${oauth.issuer ?? 'the provider'} (cmdop login)`,
          kind: 'oauth',
          principal: oauth.subject === null ? null : `user:${oauth.subject}`,
          workspace: workspace.name,
          ca_fingerprint: workspace.ca_fingerprint,
          ca_host: workspace.ca_host,
          ca_address: workspace.ca_address,
          passed_over: [...passed],
        },
        bearer: () => oauthAccessToken(flags.home),
      };
    }
  } else {
    passed.push('OAuth: not logged in');
  }
  const member = await hostWorkspace(flags.home);
  if (member !== undefined) {
    return {
      choice: {
        ...EMPTY,
        source: 'host',
        why: `this machine is the host "${member.host}" of workspace "${member.name}": calls go through its daemon with its certificate`,
        kind: 'host',
        principal: `host:${member.host}`,
        workspace: member.name,
        passed_over: [...passed],
      },
    };
  }
  passed.push('host certificate: this machine is not a host of a workspace yet');
  // Nothing else: the local daemon, which makes this machine a one-host workspace when it first starts.
  return {
    choice: {
      ...EMPTY,
      source: 'host',
      why: 'no API key, login or share token was found: calls go through this machine\'s daemon (`cmdop agent start` makes it a host)',
      kind: 'host',
      passed_over: [...passed],
    },
  };
}

function apiKeyChoice(raw: string, source: CredentialSource, why: string, passed: readonly string[], workspace?: string): ResolvedCredential {
  const key = raw.trim();
  const claims = parseApiKey(key);
  return {
    choice: {
      ...EMPTY,
      source,
      why,
      kind: 'api_key',
      principal: `key:${claims.name}`,
      workspace: workspace ?? claims.workspace ?? null,
      ca_fingerprint: claims.caFingerprint,
      ca_host: claims.caHost ?? null,
      ca_address: claims.caAddress ?? null,
      passed_over: [...passed],
    },
    bearer: () => Promise.resolve(key),
  };
}

/** This machine's workspace, when it is a host of one. */
async function hostWorkspace(home: string): Promise<{ name: string; host: string; ca_fingerprint: string; ca_host: string; ca_address: string } | undefined> {
  const membership = await loadMembership(home);
  if (membership === undefined) return undefined;
  // Only the CA certificate is read: the CLI never holds the host key.
  const caPem = await readSecureFile(join(tlsDir(home), CA_CERT_FILE));
  if (caPem === undefined) return undefined;
  return { name: membership.workspace_name, host: membership.host_name, ca_fingerprint: caFingerprint(caPem), ca_host: membership.ca_host_name, ca_address: membership.ca_address };
}
