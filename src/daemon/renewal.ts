/**
 * Host certificate renewal: checked at start and every few hours; once the certificate is in
 * its last third (or last 30 days), a fresh key and CSR go to the CA host (or are signed here
 * on the CA host), and the new identity is saved and put into service without a restart.
 */
import { createHostKeyAndCsr, needsRenewal, saveHostIdentity, signHostCsr, verifyHostCert, type HostIdentity } from '../identity/host-cert.js';
import { loadCa, tlsDir } from '../identity/workspace-ca.js';
import { createMeshClient } from '../transport/grpc-client.js';
import { CmdopError } from '../errors.js';
import type { AgentLog } from './agent-log.js';
import type { Membership } from './membership.js';
import { lookupPeer, readRoster } from './roster.js';

const CHECK_EVERY_MS = 6 * 60 * 60 * 1000;

export interface RenewalOptions {
  readonly home: string;
  readonly membership: Membership;
  readonly identity: () => HostIdentity;
  readonly log: AgentLog;
  readonly onRenewed: (next: HostIdentity) => void;
  readonly now?: () => Date;
  readonly checkEveryMs?: number;
}

/** Renews this host's certificate now if it is due; true when it was renewed. */
export async function renewIfDue(options: RenewalOptions): Promise<boolean> {
  const now = options.now?.() ?? new Date();
  const current = options.identity();
  if (!needsRenewal(current.certPem, now)) return false;
  const hostName = verifyHostCert(current.certPem, current.caCertPem, { now: new Date(Math.min(now.getTime(), Date.now())) }).hostName;
  const { keyPem, csrPem } = await createHostKeyAndCsr(hostName);
  let certPem: string;
  if (options.membership.is_ca) {
    const ca = await loadCa(tlsDir(options.home));
    if (ca === undefined) throw new CmdopError('config', 'the CA key is missing on the CA host; the certificate cannot be renewed');
    certPem = await signHostCsr(ca, csrPem, { hostName });
  } else {
    const record = lookupPeer(await readRoster(options.home), options.membership.ca_host_name);
    const client = createMeshClient({ address: record?.address ?? options.membership.ca_address, tls: current, expectedHostName: options.membership.ca_host_name });
    try {
      certPem = (await client.renew({ csr_pem: csrPem }, { timeoutMs: 15_000 })).cert_pem;
    } finally {
      client.close();
    }
  }
  const next: HostIdentity = { keyPem, certPem, caCertPem: current.caCertPem };
  await saveHostIdentity(tlsDir(options.home), next);
  options.onRenewed(next);
  options.log.info('renewed this host certificate', { host: hostName, not_after: verifyHostCert(certPem, current.caCertPem).notAfter.toISOString() });
  return true;
}

export function startRenewal(options: RenewalOptions): { stop(): void } {
  const check = (): void => {
    renewIfDue(options).catch((error: unknown) => {
      options.log.warn('certificate renewal failed; it is tried again later', { error: CmdopError.from(error).message });
    });
  };
  check();
  const timer = setInterval(check, options.checkEveryMs ?? CHECK_EVERY_MS);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
    },
  };
}
