/**
 * Making and joining workspaces (DESIGN.md §6): `workspace init` creates the CA and this host's
 * certificate; `workspace invite` mints a one-time join token; `join` sends a certificate
 * request through the token to the CA host and keeps what comes back. Each writes nothing
 * until everything it needs is in hand, so a refused join leaves the host as it was.
 */
import { hostname } from 'node:os';
import { localRequest } from '../client/local-client.js';
import { ensureCmdopHome } from '../config/cmdop-home.js';
import { loadConfig } from '../config/config-file.js';
import { CmdopError } from '../errors.js';
import { createHostKeyAndCsr, loadHostIdentity, saveHostIdentity, signHostCsr, verifyHostCert } from '../identity/host-cert.js';
import { isValidHostName, normalizeHostName } from '../identity/host-name.js';
import { createJoinTokenStore, joinTokensPath, mintJoinToken, parseJoinToken, validateServerAddress } from '../identity/join-token.js';
import { createWorkspaceCa, loadCa, saveCa, tlsDir } from '../identity/workspace-ca.js';
import { joinWorkspace } from '../transport/grpc-client.js';
import { LOCAL_ROUTES, type StatusReply } from '../transport/local-api.js';
import { loadMembership, saveMembership, type Membership } from './membership.js';
import { issuedNames, recordIssued } from './issued-names.js';
import { recordRevoked } from './revoked-names.js';
import { updateRoster } from './roster.js';

/** This machine's host name as a valid cmdop host name (one DNS label, lower case). */
export function defaultHostName(): string {
  const first = hostname().split('.')[0] ?? '';
  const cleaned = first.toLowerCase().replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63);
  return isValidHostName(cleaned) && !RESERVED_NAMES.has(cleaned) ? cleaned : 'host';
}

/** Names the CLI uses for this host itself (`connect exec self -- ...`); no host may take them. */
export const RESERVED_NAMES: ReadonlySet<string> = new Set(['localhost', 'self']);

/** A valid, unreserved host name, lower-cased. */
export function checkNewHostName(name: string): string {
  const host = normalizeHostName(name);
  if (RESERVED_NAMES.has(host)) {
    throw new CmdopError('invalid_input', `"${host}" is reserved: the CLI uses it for this host itself`, { hint: 'Pick another name with --name.' });
  }
  return host;
}

export interface InitOptions {
  readonly home: string;
  /** Workspace name; default `default`. */
  readonly name?: string | undefined;
  /** This host's name; default this machine's host name. */
  readonly hostName?: string | undefined;
  /** The address peers will reach this host at (`agent.listen`). */
  readonly address: string;
}

/** Creates a workspace CA on this host and this host's certificate; refuses if the host is already a member. */
export async function initWorkspace(options: InitOptions): Promise<Membership> {
  await refuseIfMember(options.home);
  const hostName = checkNewHostName(options.hostName ?? defaultHostName());
  const ca = await createWorkspaceCa({ name: options.name ?? 'default' });
  const { keyPem, csrPem } = await createHostKeyAndCsr(hostName);
  const certPem = await signHostCsr(ca, csrPem, { hostName });
  await ensureCmdopHome(options.home);
  const dir = tlsDir(options.home);
  await saveCa(dir, ca);
  await saveHostIdentity(dir, { keyPem, certPem, caCertPem: ca.certPem });
  await recordIssued(options.home, hostName);
  const membership: Membership = {
    workspace_id: ca.workspaceId,
    workspace_name: ca.name,
    host_name: hostName,
    is_ca: true,
    ca_host_name: hostName,
    ca_address: options.address,
    joined_at: new Date().toISOString(),
  };
  await saveMembership(options.home, membership);
  return membership;
}

export interface InviteResult {
  readonly token: string;
  readonly expires_at: string;
  readonly server: string;
  readonly ca_fingerprint: string;
}

/**
 * The `HOST:PORT` other machines reach this host at, for the tokens that carry it (join tokens,
 * API keys, share links): where the running daemon listens (agent.listen may say port 0), else
 * agent.listen; undefined when neither is a usable address (port 0 and no daemon running).
 */
export async function reachableAddress(home: string): Promise<string | undefined> {
  const running = await localRequest<StatusReply>({ home, timeoutMs: 5_000 }, LOCAL_ROUTES.status).catch(() => undefined);
  const address = running?.listen_address ?? (await loadConfig(home)).agent.listen;
  try {
    return validateServerAddress(address);
  } catch {
    return undefined;
  }
}

/** Mints a one-time join token on the CA host. */
export async function inviteToWorkspace(home: string, ttlMs: number, address: string): Promise<InviteResult> {
  const ca = await loadCa(tlsDir(home));
  if (ca === undefined) {
    throw new CmdopError('config', 'this host does not hold the workspace CA, so it cannot invite', {
      hint: 'Run `cmdop workspace invite` on the CA host, or `cmdop workspace init` to start a workspace here.',
    });
  }
  const membership = await loadMembership(home);
  const minted = mintJoinToken({ caFingerprint: ca.fingerprint, serverAddress: address, ttlMs, ...(membership === undefined ? {} : { caHostName: membership.host_name }) });
  await createJoinTokenStore(joinTokensPath(home)).add(minted);
  return { token: minted.token, expires_at: minted.expiresAt.toISOString(), server: address, ca_fingerprint: ca.fingerprint };
}

export interface JoinOptions {
  readonly home: string;
  readonly token: string;
  /** Overrides the address the token carries. */
  readonly server?: string | undefined;
  readonly hostName?: string | undefined;
  readonly timeoutMs?: number;
}

/** Joins the workspace of `token`: checks the server's CA against the token, sends a CSR, keeps the certificate. */
export async function joinExistingWorkspace(options: JoinOptions): Promise<Membership> {
  await refuseIfMember(options.home);
  const claims = parseJoinToken(options.token.trim());
  if (claims.expiresAt.getTime() <= Date.now()) {
    throw new CmdopError('denied', `the join token expired at ${claims.expiresAt.toISOString()}`, { hint: 'Ask for a new one with `cmdop workspace invite` on the CA host.' });
  }
  const address = validateServerAddress(options.server ?? claims.serverAddress);
  const hostName = checkNewHostName(options.hostName ?? defaultHostName());
  const { keyPem, csrPem } = await createHostKeyAndCsr(hostName);
  const reply = await joinWorkspace({
    address,
    fingerprint: claims.caFingerprint,
    token: options.token.trim(),
    hostName,
    csrPem,
    expectedHostName: claims.caHostName,
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
  // What came back must be a certificate of that workspace, naming this host, for this key.
  const verified = verifyHostCert(reply.cert_pem, reply.ca_cert_pem);
  if (verified.hostName !== hostName) {
    throw new CmdopError('denied', `the CA host sent a certificate for "${verified.hostName}", not "${hostName}"; nothing was written`);
  }
  await ensureCmdopHome(options.home);
  await saveHostIdentity(tlsDir(options.home), { keyPem, certPem: reply.cert_pem, caCertPem: reply.ca_cert_pem });
  const membership: Membership = {
    workspace_id: verified.workspaceId,
    workspace_name: reply.workspace_name,
    host_name: hostName,
    is_ca: false,
    ca_host_name: reply.ca_host_name,
    ca_address: address,
    joined_at: new Date().toISOString(),
  };
  await saveMembership(options.home, membership);
  await updateRoster(options.home, (records) => [
    ...records.filter((r) => !(r.name === reply.ca_host_name && r.source === 'roster')),
    { name: reply.ca_host_name, address, last_seen: new Date().toISOString(), source: 'roster' },
  ]);
  return membership;
}

async function refuseIfMember(home: string): Promise<void> {
  const membership = await loadMembership(home);
  const identity = await loadHostIdentity(tlsDir(home));
  if (membership !== undefined || identity !== undefined) {
    const name = membership === undefined ? '' : ` "${membership.workspace_name}" as ${membership.host_name}`;
    throw new CmdopError('config', `this host is already a member of workspace${name}`, {
      hint: 'Use another CMDOP_HOME for another host, or move the tls/ folder and workspace.json away to leave the workspace.',
    });
  }
}

export interface RevokeResult {
  readonly host: string;
  /** When the host was revoked (earlier, when it already was). */
  readonly revoked_at: string;
  /** False when the host had already been revoked; nothing changed then. */
  readonly newly_revoked: boolean;
  /** Whether a roster entry of the host was removed. */
  readonly removed_from_roster: boolean;
}

/**
 * CA host: revokes `name` from the workspace. The name is recorded as revoked (the CA daemon
 * and, through announce replies, every other daemon refuse its calls from then on) and taken
 * out of the roster; it stays issued, so nobody can join under it again.
 */
export async function revokeFromWorkspace(home: string, name: string): Promise<RevokeResult> {
  const ca = await loadCa(tlsDir(home));
  const membership = await loadMembership(home);
  if (ca === undefined || membership?.is_ca !== true) {
    throw new CmdopError('config', 'this host does not hold the workspace CA, so it cannot revoke hosts', {
      hint: 'Run `cmdop workspace revoke HOST` on the CA host of the workspace.',
    });
  }
  const host = name.toLowerCase();
  if (!isValidHostName(host)) {
    throw new CmdopError('invalid_input', `${JSON.stringify(name)} is not a valid host name`, { hint: 'Give the name the host joined with, as `cmdop peers list` shows it.' });
  }
  if (host === membership.host_name) {
    throw new CmdopError('invalid_input', `${host} is the CA host of this workspace and cannot revoke itself`, {
      hint: 'Revoke other hosts only; to retire the CA host, start a new workspace with `cmdop workspace init` elsewhere.',
    });
  }
  if (!(await issuedNames(home)).has(host)) {
    throw new CmdopError('not_found', `no host named ${host} ever joined workspace "${ca.name}"`, {
      hint: 'See the hosts with `cmdop peers list`.',
      details: { host },
    });
  }
  const recorded = await recordRevoked(home, host);
  let removed = false;
  await updateRoster(home, (records) => {
    removed = records.some((r) => r.name === host);
    return removed ? records.filter((r) => r.name !== host) : undefined;
  });
  return { host, revoked_at: recorded.revoked_at, newly_revoked: recorded.added, removed_from_roster: removed };
}
