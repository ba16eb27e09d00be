/**
 * This host's side of the Mesh service: every tool call gated and audited as its verified
 * caller; workspace membership (join, renew, announce, roster) answered by the CA host. A caller
 * whose host was revoked from the workspace is refused before anything else, and audited.
 */
import { CmdopError } from '../errors.js';
import type { HostIdentity } from '../identity/host-cert.js';
import { signHostCsr } from '../identity/host-cert.js';
import { checkJoinToken, createJoinTokenStore, joinTokensPath, parseJoinToken, redeemJoinToken } from '../identity/join-token.js';
import { loadCa, tlsDir } from '../identity/workspace-ca.js';
import type { MeshHandler, RemoteCaller } from '../transport/mesh-handler.js';
import type { GateDeps } from './gated-call.js';
import type { Membership } from './membership.js';
import { issuedNames, recordIssued } from './issued-names.js';
import type { PeerDirectory } from './peer-directory.js';
import { auditRefusal, createRefusalWindow } from './refusal-log.js';
import { RESERVED_NAMES } from './workspace.js';
import { runExecute, runList, runRead, runWrite } from './tool-runner.js';
import { createCallLimiter } from './call-limits.js';
import { currentCredentials, NO_CREDENTIALS } from './workspace-credentials.js';

/** Joins that may wait for the one before them. */
const MAX_QUEUED_JOINS = 8;

export interface MeshServiceOptions {
  readonly deps: GateDeps;
  readonly membership: Membership;
  readonly peers: PeerDirectory;
  readonly identity: () => HostIdentity;
  readonly version: string;
  /** Where this host listens now (the configured port may be 0). */
  readonly listenAddress: () => string;
}

/** Whether the caller proved itself with a host certificate (not a bearer credential). */
function isHostCaller(caller: RemoteCaller): boolean {
  return (caller.credential ?? 'certificate') === 'certificate';
}

/** Membership RPCs are for hosts; the transport already refuses bearer callers, and this makes sure. */
function requireHost(caller: RemoteCaller, what: string): void {
  if (!isHostCaller(caller)) {
    throw new CmdopError('denied', `refused before the gate: only a host of the workspace may ${what}`, { details: { stage: 'authentication' } });
  }
}

export function createMeshService(options: MeshServiceOptions): MeshHandler {
  const { deps, membership, peers } = options;
  // Joins are taken one at a time, so two hosts can never both get the same name; the queue is
  // short, since anyone can knock without a certificate.
  let joins: Promise<unknown> = Promise.resolve();
  let queuedJoins = 0;
  const limiter = createCallLimiter(deps.self.host);
  const limited = <T>(caller: RemoteCaller, run: () => Promise<T>): Promise<T> => limiter.run(caller, run);

  // Calls from revoked hosts are refused before the gate. The gRPC server audits only the
  // refusals it makes itself, so these are audited here, at most one line a minute per host and
  // method: a revoked host keeps announcing every few seconds, and that must not hide the line
  // of the one call that tried to run a tool.
  const revokedRefusals = createRefusalWindow();
  const refuseRevoked = async (caller: RemoteCaller, tool: string): Promise<void> => {
    // A bearer caller has no host; its credential was checked for revocation when it was verified.
    if (!isHostCaller(caller) || !(await peers.isRevoked(caller.host))) return;
    const reason = `refused before the gate: the host ${caller.host} was revoked from this workspace`;
    const { write, suppressed } = revokedRefusals.admit(`${caller.host}/${tool}`);
    if (write) await auditRefusal(deps.audit(), deps.log, { tool, reason, hostname: caller.host, user: `host:${caller.host}`, suppressed, from: 'host' });
    throw new CmdopError('denied', reason, {
      hint: 'Its certificate is no longer accepted in this workspace; it cannot join again under this name.',
      details: { stage: 'authentication', host: caller.host },
    });
  };

  const requireCa = async (what: string): Promise<NonNullable<Awaited<ReturnType<typeof loadCa>>>> => {
    const ca = membership.is_ca ? await loadCa(tlsDir(deps.home)) : undefined;
    if (ca === undefined) {
      throw new CmdopError('denied', `${deps.self.host} is not the CA host of this workspace, so it cannot ${what}`, {
        hint: `Use the CA host, ${membership.ca_host_name} (${membership.ca_address}).`,
      });
    }
    return ca;
  };

  return {
    ping: async (caller) => {
      await refuseRevoked(caller, 'ping');
      return { host_name: deps.self.host, version: options.version };
    },
    executeCommand: async (caller, request, ctx) => {
      await refuseRevoked(caller, 'execute_command');
      return limited(caller, async () => {
        const r = await runExecute(deps, caller, request, ctx.signal);
        return { ...r.result, decision: r.decision };
      });
    },
    readFile: async (caller, request, ctx) => {
      await refuseRevoked(caller, 'read_file');
      return limited(caller, async () => {
        const r = await runRead(deps, caller, request, ctx.signal);
        return { ...r.result, decision: r.decision };
      });
    },
    writeFile: async (caller, request, ctx) => {
      await refuseRevoked(caller, 'write_file');
      return limited(caller, async () => {
        const r = await runWrite(deps, caller, request, ctx.signal);
        return { ...r.result, decision: r.decision };
      });
    },
    listDir: async (caller, request, ctx) => {
      await refuseRevoked(caller, 'list_dir');
      return limited(caller, async () => {
        const r = await runList(deps, caller, request, ctx.signal);
        return { ...r.result, decision: r.decision };
      });
    },
    join: (request) => {
      const run = async (): Promise<Awaited<ReturnType<MeshHandler['join']>>> => {
        const ca = await requireCa('admit new hosts');
        const tokens = createJoinTokenStore(joinTokensPath(deps.home));
        // Nothing about the workspace (such as which names are taken) is told to a caller
        // without a valid token.
        await checkJoinToken(tokens, request.token);
        const name = request.host_name.toLowerCase();
        if (RESERVED_NAMES.has(name) || (await peers.isTaken(name)) || (await issuedNames(deps.home)).has(name)) {
          throw new CmdopError('denied', `the host name "${name}" is already taken in workspace "${ca.name}"`, {
            hint: 'Join with another name: cmdop join TOKEN --server HOST:PORT --name OTHER-NAME (the token was not used up).',
            details: { host: name },
          });
        }
        // The request is checked (and signed) before the token is used up by it.
        const certPem = await signHostCsr(ca, request.csr_pem, { hostName: name });
        await redeemJoinToken(tokens, request.token);
        await recordIssued(deps.home, name);
        await peers.registerJoined(name);
        deps.log.info('a host joined the workspace', { host: name });
        return {
          cert_pem: certPem,
          ca_cert_pem: ca.certPem,
          workspace_id: ca.workspaceId,
          workspace_name: ca.name,
          ca_host_name: deps.self.host,
          ca_address: options.listenAddress(),
        };
      };
      // A token that is not even well formed never waits in the queue.
      parseJoinToken(request.token);
      if (queuedJoins >= MAX_QUEUED_JOINS) {
        return Promise.reject(new CmdopError('rate_limited', 'too many joins are waiting on the CA host', { hint: 'Try again in a moment.' }));
      }
      queuedJoins++;
      const result = joins.then(run, run).finally(() => {
        queuedJoins--;
      });
      joins = result.catch(() => undefined);
      return result;
    },
    renew: async (caller, request) => {
      requireHost(caller, 'renew a certificate');
      await refuseRevoked(caller, 'renew');
      const ca = await requireCa('renew certificates');
      const certPem = await signHostCsr(ca, request.csr_pem, { hostName: caller.host });
      deps.log.info('renewed a host certificate', { host: caller.host });
      return { cert_pem: certPem };
    },
    announce: async (caller, request) => {
      requireHost(caller, 'announce an address');
      await refuseRevoked(caller, 'announce');
      const view = await peers.recordAnnounce(caller.host, request.address);
      // Only the CA host's records are the workspace's; another host has nothing to hand out.
      let credentials = NO_CREDENTIALS;
      if (membership.is_ca) {
        try {
          credentials = await currentCredentials(deps.home, true);
        } catch (error) {
          // Still answer with the roster and the revoked names; an empty key list makes every
          // host refuse API keys until the key file is readable again (fail closed).
          deps.log.error('cannot read the workspace credentials; hosts are told there are no API keys', { error });
        }
      }
      return { peers: view, revoked: await peers.revoked(), credentials };
    },
    roster: async (caller) => {
      if (caller.credential === 'share') {
        // A guest is let in to one host; the rest of the workspace is none of its business.
        throw new CmdopError('denied', 'refused before the gate: a share token opens one host, not the roster of the workspace', { details: { stage: 'authentication' } });
      }
      await refuseRevoked(caller, 'roster');
      // A caller that is not a host learns where the hosts are, nothing more.
      return { peers: await peers.roster(), revoked: isHostCaller(caller) ? await peers.revoked() : [] };
    },
  };
}
