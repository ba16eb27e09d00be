/**
 * The daemon (DESIGN.md §2): the composition root. It holds this host's identity, serves peers
 * over gRPC with mutual TLS and its own CLI over the local socket, gates and audits every call,
 * keeps the roster current and renews its certificate. `startAgent` resolves once everything
 * listens; `stop` drains in-flight calls, flushes the audit log and removes the socket.
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createAuditSink, type AuditSink } from '../audit/audit-sink.js';
import { ensureCmdopHome, ensurePrivateDir, logsDir, runDir } from '../config/cmdop-home.js';
import { loadConfig } from '../config/config-file.js';
import { writeFileAtomic } from '../config/secure-file.js';
import { CmdopError } from '../errors.js';
import type { Caller, SelfIdentity } from '../gate/caller.js';
import { createGate } from '../gate/gate.js';
import { exactRule, parseRule } from '../gate/rule-grammar.js';
import type { ToolName } from '../gate/types.js';
import { loadHostIdentity, verifyHostCert, type HostIdentity } from '../identity/host-cert.js';
import { createLocalToken } from '../identity/local-token.js';
import { requireUnlocked } from '../identity/machine-password.js';
import { caFingerprint, tlsDir } from '../identity/workspace-ca.js';
import { createFsPathResolver } from '../platform/fs-path-resolver.js';
import { createMeshServer, type MeshServer, type RefusedCall } from '../transport/grpc-server.js';
import type { AnswerReply, AnswerRequest, CallReply, CallRequest, OauthTokenReply, PeersReply, StatusReply } from '../transport/local-api.js';
import { createLocalServer, type LocalServer } from '../transport/local-server.js';
import { hostPrincipal } from '../transport/peer-identity.js';
import { attachOperatorChannel } from '../transport/operator-channel.js';
import { openAgentLog, type AgentLog } from './agent-log.js';
import type { GateDeps } from './gated-call.js';
import { loadMembership } from './membership.js';
import { createMeshService } from './mesh-service.js';
import { createBearerAuthenticator, MAX_CREDENTIALS_AGE_MS } from './bearer-auth.js';
import { startOauthRefresher } from './oauth-refresher.js';
import { freshAccessToken } from '../client/oauth-session.js';
import { agentLogPath, localTokenPath, pidPath, socketPath } from './paths.js';
import { acquirePidFile } from './pid-file.js';
import { createPeerDirectory, type PeerDirectory } from './peer-directory.js';
import { auditRefusal, createRefusalWindow } from './refusal-log.js';
import { createPolicySource } from './policy-source.js';
import { createPromptBroker, toAnswerReply, type AnswerResult } from './prompt-broker.js';
import { callLocally, callPeer } from './local-calls.js';
import { initWorkspace } from './workspace.js';
import { startRenewal } from './renewal.js';

export interface AgentOptions {
  readonly home: string;
  /** Echo the agent log to stderr (the daemon in the foreground). */
  readonly echoLog?: boolean;
  readonly debug?: boolean;
}

export interface RunningAgent {
  readonly hostName: string;
  readonly listenAddress: string;
  readonly socketPath: string;
  /** Resolves when the daemon has stopped (after `stop`, a signal or a shutdown request). */
  readonly stopped: Promise<void>;
  stop(reason?: string): Promise<void>;
}

/** The version of this build, from package.json. */
export function agentVersion(): string {
  try {
    const here = dirname(fileURLToPath(import.meta.url));
    for (const up of ['../../..', '../..']) {
      const text = readFileSync(join(here, up, 'package.json'), 'utf8');
      const pkg = JSON.parse(text) as { name?: string; version?: string };
      if (pkg.name === 'cmdop-mesh' && typeof pkg.version === 'string') return pkg.version;
    }
  } catch {
    // Fall through.
  }
  return '0.0.0';
}

/** How long stop() lets in-flight calls finish before cutting them. */
const DRAIN_MS = 10_000;

export async function startAgent(options: AgentOptions): Promise<RunningAgent> {
  const home = options.home;
  await ensureCmdopHome(home);
  await ensurePrivateDir(runDir(home));
  await ensurePrivateDir(logsDir(home));
  const releasePid = await acquirePidFile(pidPath(home));
  const cleanup: Cleanup[] = [releasePid];
  const log = await openAgentLog({ path: agentLogPath(home), echo: options.echoLog === true, debug: options.debug === true });
  cleanup.unshift(() => log.close());
  try {
    return await compose(home, log, cleanup);
  } catch (error) {
    log.error('the daemon could not start', { error });
    for (const step of cleanup) {
      try {
        await step();
      } catch {
        // Best effort: the start already failed.
      }
    }
    throw error;
  }
}

/** One step of shutting down, run in order. */
type Cleanup = () => Promise<void> | void;

async function compose(home: string, log: AgentLog, cleanup: Cleanup[]): Promise<RunningAgent> {
  const started = Date.now();
  const config = await loadConfig(home);
  const listen = config.agent.listen;
  let membership = await loadMembership(home);
  if (membership === undefined) {
    // First start with nothing configured: a workspace of one host, on loopback by default.
    membership = await initWorkspace({ home, address: listen });
    log.info('created a single-host workspace', { workspace: membership.workspace_name, host: membership.host_name });
  }
  const identity = await loadIdentity(home);
  const verified = verifyHostCert(identity.certPem, identity.caCertPem);
  const hostName = verified.hostName;
  // This host is whoever holds its own certificate; another certificate naming it is not it.
  const ownCertificates = new Set<string>([verified.fingerprint]);
  let currentFingerprint = verified.fingerprint;
  const self: SelfIdentity = { host: hostName, principal: hostPrincipal(hostName), certificates: ownCertificates };
  const userHome = homedir();

  let audit: AuditSink = await createAuditSink({ dir: logsDir(home) });
  cleanup.unshift(() => audit.close());
  const gate = await createGate({ home: userHome, cmdopHome: home, resolver: createFsPathResolver() });
  const policies = createPolicySource(home, userHome);
  // A broken permissions.yaml or config.yaml stops the start here, with its line (exit 6).
  await policies.current();
  const broker = createPromptBroker({
    timeoutMs: config.permissions.ask_timeout * 1000,
    // The rule "allow for this session" or "allow always" adds: exactly this target, never a glob.
    ruleFor: (prompt) => {
      const rule = exactRule(prompt.tool as ToolName, prompt.target, prompt.operation ?? undefined);
      try {
        parseRule(rule);
        return rule;
      } catch {
        return '(none: this target cannot be written as a rule, so the answer holds for this call only)';
      }
    },
  });
  cleanup.unshift(() => {
    broker.close();
  });
  /**
   * Both ways of answering a prompt (the local API and the operator channel) come here. An
   * allow for the session or always adds a rule, so it is a permission change: with a machine
   * password set it needs an unlocked machine. Deny and allow-once are the operator's answer to
   * one call and are always taken.
   */
  const answerPrompt = async (request: AnswerRequest): Promise<AnswerResult> => {
    if (request.decision === 'allow' && request.scope !== undefined && request.scope !== 'once') await requireUnlocked(home);
    return broker.answer(request);
  };
  const counters = { served: 0 };
  const deps: GateDeps = { home, gate, policies, audit: () => audit, prompts: broker, self, log, counters };
  const identityRef = { current: identity };
  const peers: PeerDirectory = createPeerDirectory({ home, self: hostName, membership, identity: () => identityRef.current, log, announceIntervalMs: config.agent.announce_interval * 1000 });
  cleanup.unshift(() => {
    peers.close();
  });

  let listenAddress = listen;
  const service = createMeshService({ deps, membership, peers, identity: () => identityRef.current, version: agentVersion(), listenAddress: () => listenAddress });
  const [host, port] = splitListen(listen);
  const refusals = createRefusalWindow();
  const serverOptions = {
    host,
    tls: identity,
    handler: service,
    authenticateBearer: createBearerAuthenticator({
      home,
      selfHost: hostName,
      isCa: membership.is_ca,
      caFingerprint: caFingerprint(identity.caCertPem),
      refreshCredentials: () => peers.refreshNow(),
      ...(membership.is_ca ? {} : { lastCaContact: () => peers.lastCaContact(), maxCredentialsAgeMs: Math.max(MAX_CREDENTIALS_AGE_MS, config.agent.announce_interval * 10_000) }),
      onError: (error) => {
        log.error('could not verify a bearer credential; the call was refused', { error });
      },
    }),
    onRefused: (refused: RefusedCall) => {
      const { write, suppressed } = refusals.admit(refused.peer, refused.reason);
      if (write) void auditRefusal(audit, log, { tool: toolOf(refused.method), reason: refused.reason, hostname: 'unauthenticated', user: `peer ${refused.peer}`, suppressed, from: 'address' });
    },
    onInternalError: (error: unknown, method: string) => {
      log.error('a peer call failed unexpectedly', { error, method });
    },
  };
  const mesh: MeshServer = await listenStable(home, port, (p) => createMeshServer({ ...serverOptions, port: p }));
  cleanup.unshift(() => mesh.close(DRAIN_MS));
  listenAddress = `${host.includes(':') ? `[${host}]` : host}:${mesh.port}`;
  log.info('serving peers', { address: listenAddress, host: hostName, workspace: membership.workspace_name });

  const token = createLocalToken();
  await writeFileAtomic(localTokenPath(home), `${token}\n`, 0o600);
  let stopRequested: (reason: string) => void = () => undefined;
  const local: LocalServer = await createLocalServer({
    socketPath: socketPath(home),
    token,
    handler: {
      status: async (): Promise<StatusReply> => {
        const { policy } = await policies.current();
        const list = await peers.list();
        return {
          pid: process.pid,
          version: agentVersion(),
          uptime_ms: Date.now() - started,
          host_name: hostName,
          listen_address: listenAddress,
          workspace: { id: membership.workspace_id, name: membership.workspace_name, is_ca: membership.is_ca },
          mode: policy.mode,
          peers_online: list.filter((p) => p.source !== 'self' && p.online).length,
          calls_served: counters.served,
          operators_connected: broker.operators(),
        };
      },
      shutdown: () => {
        stopRequested('asked to stop over the local socket');
        return Promise.resolve();
      },
      call: async (request: CallRequest, signal: AbortSignal): Promise<CallReply> => {
        // A local caller with the token (the CLI, the SDK, an agent) calls hosts only while unlocked.
        await requireUnlocked(home);
        const target = request.host.toLowerCase();
        if (target === hostName || target === 'localhost' || target === 'self') {
          const caller: Caller = { kind: 'local' };
          return callLocally(deps, caller, hostName, request, signal);
        }
        return callPeer(peers, request, signal);
      },
      peers: async (): Promise<PeersReply> => ({ peers: await peers.list() }),
      sessionRules: () => policies.sessionRules(),
      pending: () => ({ operators_connected: broker.operators(), prompts: broker.pending() }),
      oauthToken: async (): Promise<OauthTokenReply> => {
        await requireUnlocked(home);
        const fresh = await freshAccessToken(home);
        return { access_token: fresh.accessToken, expires_at: fresh.expiresAt.toISOString(), subject: fresh.subject };
      },
      answer: async (request): Promise<AnswerReply> => toAnswerReply(await answerPrompt(request)),
    },
    onInternalError: (error) => {
      log.error('a local request failed unexpectedly', { error });
    },
  });
  const operators = attachOperatorChannel(local.server, { token, broker: { attach: (listener) => broker.attach(listener), answer: answerPrompt } });
  cleanup.unshift(() => local.close(DRAIN_MS));
  cleanup.unshift(() => operators.close());

  const renewal = startRenewal({
    home,
    membership,
    identity: () => identityRef.current,
    log,
    onRenewed: (next) => {
      identityRef.current = next;
      // The previous certificate stays this host's until its clients have moved to the new one.
      const fresh = verifyHostCert(next.certPem, next.caCertPem).fingerprint;
      ownCertificates.clear();
      ownCertificates.add(currentFingerprint);
      ownCertificates.add(fresh);
      currentFingerprint = fresh;
      mesh.updateIdentity({ keyPem: next.keyPem, certPem: next.certPem });
      peers.resetClients();
    },
  });
  cleanup.unshift(() => {
    renewal.stop();
  });
  peers.start(listenAddress);
  const oauth = startOauthRefresher({ home, log });
  cleanup.unshift(() => {
    oauth.stop();
  });
  log.info('the daemon is ready', { pid: process.pid, socket: socketPath(home) });

  let resolveStopped: () => void = () => undefined;
  const stopped = new Promise<void>((resolveDone) => {
    resolveStopped = resolveDone;
  });
  let stopping: Promise<void> | undefined;
  const stop = (reason = 'stopped'): Promise<void> => {
    stopping ??= (async () => {
      log.info('stopping: draining calls in flight', { reason });
      const began = Date.now();
      for (const [index, step] of cleanup.entries()) {
        const at = Date.now();
        try {
          await step();
        } catch (error) {
          log.warn('a shutdown step failed', { error });
        }
        log.debug('shutdown step done', { index, ms: Date.now() - at });
      }
      log.info('stopped', { ms: Date.now() - began });
      resolveStopped();
    })();
    return stopping;
  };
  stopRequested = (reason) => {
    // Answer the request first; the socket closes as part of the stop.
    setImmediate(() => {
      void stop(reason);
    });
  };
  // Reopen the audit sink when a failed one is asked for again, at most every 5 s: a disk that
  // was full and is freed again lets calls run, and nothing runs while it cannot be written.
  const reopen = setInterval(() => {
    if (!audit.failed()) return;
    createAuditSink({ dir: logsDir(home) }).then(
      (next) => {
        const old = audit;
        audit = next;
        void old.close().catch(() => undefined);
        log.info('the audit log can be written again');
      },
      () => undefined,
    );
  }, 5_000);
  reopen.unref();
  cleanup.push(() => {
    clearInterval(reopen);
  });
  return { hostName, listenAddress, socketPath: socketPath(home), stopped, stop };
}

async function loadIdentity(home: string): Promise<HostIdentity> {
  const identity = await loadHostIdentity(tlsDir(home));
  if (identity === undefined) {
    throw new CmdopError('config', `this host has no certificate in ${tlsDir(home)}`, {
      hint: 'Run `cmdop workspace init` to start a workspace here, or `cmdop join TOKEN --server HOST:PORT` to join one.',
    });
  }
  return identity;
}

/**
 * With `agent.listen` port 0, the port of the previous run is tried first, so peers that knew
 * this host (the CA host above all) find it again after a restart; a free port otherwise.
 */
async function listenStable(home: string, port: number, listen: (port: number) => Promise<MeshServer>): Promise<MeshServer> {
  if (port !== 0) return listen(port);
  const file = join(runDir(home), 'last-port');
  const previous = Number.parseInt(await readFile(file, 'utf8').catch(() => ''), 10);
  let server: MeshServer | undefined;
  if (Number.isSafeInteger(previous) && previous > 0 && previous < 65536) server = await listen(previous).catch(() => undefined);
  server ??= await listen(0);
  await writeFileAtomic(file, `${server.port}\n`, 0o600);
  return server;
}

function splitListen(listen: string): [string, number] {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(listen);
  if (m === null) throw new CmdopError('config', `agent.listen must be host:port, not ${JSON.stringify(listen)}`, { hint: 'cmdop config set agent.listen 127.0.0.1:8470' });
  return [m[1] ?? m[2] ?? '127.0.0.1', Number(m[3])];
}

/** A call refused before the gate (no or foreign certificate, malformed request) is audited as a denial. */
function toolOf(method: string): string {
  const table: Readonly<Record<string, string>> = { ExecuteCommand: 'execute_command', ReadFile: 'read_file', WriteFile: 'write_file', ListDir: 'list_dir' };
  return table[method] ?? method.toLowerCase();
}

/** Installs SIGTERM/SIGINT handlers that stop the agent once. */
export function stopOnSignals(agent: RunningAgent): void {
  const handler = (signal: NodeJS.Signals): void => {
    void agent.stop(`received ${signal}`);
  };
  process.once('SIGTERM', handler);
  process.once('SIGINT', handler);
}
