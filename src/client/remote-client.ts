/**
 * Calls made with a bearer credential (API key, OAuth access token, share token) straight from
 * this process to the host, over TLS to the workspace CA the credential names: no daemon is
 * needed, so a CI runner or a guest's laptop outside the workspace can call. The host's gate
 * decides as for any remote caller.
 *
 * The host's address comes from, in order: the share token (a guest's one host), this
 * machine's peer list (`cmdop peers add`, or a host's roster), the CA host's own address in the
 * key, or the CA host's roster, asked with the same credential.
 */
import { CmdopError } from '../errors.js';
import { callThrough } from '../daemon/local-calls.js';
import { currentRevokedNames } from '../daemon/revoked-names.js';
import { loadMembership } from '../daemon/membership.js';
import { lookupPeer, readRoster } from '../daemon/roster.js';
import { reachableAddress } from '../daemon/workspace.js';
import { normalizeHostName } from '../identity/host-name.js';
import { connectWithBearer, type MeshClient } from '../transport/grpc-client.js';
import type { CallReply, CallRequest } from '../transport/local-api.js';
import type { CredentialChoice, ResolvedCredential } from './credentials.js';

/** Options for {@link callWithBearer}. */
export interface BearerCallOptions {
  readonly home: string;
  readonly credential: ResolvedCredential;
  /** `HOST:PORT` to use for the host, overriding every other source. */
  readonly address?: string | undefined;
  readonly signal?: AbortSignal;
}

/** Makes one tool call on `call.host` with the bearer credential; answers in the local API's shape. */
export async function callWithBearer(call: CallRequest, options: BearerCallOptions): Promise<CallReply> {
  const { choice } = options.credential;
  const bearer = options.credential.bearer;
  if (bearer === undefined || choice.ca_fingerprint === null) throw new CmdopError('internal', 'a bearer call needs a bearer credential and the CA it trusts');
  const host = normalizeHostName(call.host);
  if (choice.kind === 'share' && choice.share_host !== host) {
    throw new CmdopError('invalid_input', `this share token opens ${choice.share_host ?? 'another host'}, not ${host}`, {
      hint: `Call ${choice.share_host ?? 'the host it names'} with it, or ask ${host}'s operator for a share token of ${host}.`,
      details: { host, share_host: choice.share_host },
    });
  }
  if ((await currentRevokedNames(options.home)).has(host)) {
    // Its certificate may still verify; a credential sent there could be replayed to every other host.
    throw new CmdopError('denied', `${host} was revoked from the workspace: no credential is sent to it`, { hint: 'Call another host, or ask the workspace owner.', details: { host } });
  }
  const address = options.address ?? (await addressOf(host, options.home, choice, bearer));
  const client = await connectWithBearer({ address, caFingerprint: choice.ca_fingerprint, expectedHostName: host, bearer });
  try {
    return await callThrough(client, host, call, options.signal ?? new AbortController().signal);
  } finally {
    client.close();
  }
}

async function addressOf(host: string, home: string, choice: CredentialChoice, bearer: () => Promise<string>): Promise<string> {
  if (choice.kind === 'share' && choice.share_address !== null) return choice.share_address;
  // This machine's own host: where its daemon really listens (agent.listen may say port 0).
  if ((await loadMembership(home))?.host_name === host) {
    const own = await reachableAddress(home);
    if (own !== undefined) return own;
  }
  const known = lookupPeer(await readRoster(home), host);
  if (known !== undefined && known.address !== '') return known.address;
  if (choice.ca_host !== null && choice.ca_address !== null) {
    if (choice.ca_host === host) return choice.ca_address;
    let ca: MeshClient | undefined;
    try {
      ca = await connectWithBearer({ address: choice.ca_address, caFingerprint: choice.ca_fingerprint ?? '', expectedHostName: choice.ca_host, bearer });
      const entry = (await ca.roster()).peers.find((p) => p.name === host);
      if (entry?.address !== undefined) return entry.address;
    } finally {
      ca?.close();
    }
  }
  throw new CmdopError('not_found', `unknown host "${host}": it is not in this machine's peer list${choice.ca_host === null ? '' : ` nor in ${choice.ca_host}'s roster`}`, {
    hint: `Give its address with --address HOST:PORT, or add it with \`cmdop peers add ${host} --address HOST:PORT\`.`,
    details: { host },
  });
}
