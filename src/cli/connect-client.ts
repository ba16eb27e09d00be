/**
 * The client the `connect` verbs call hosts with: through this host's daemon (its certificate),
 * or, with a bearer credential (API key, OAuth login, share token), straight to the host. The
 * credential resolver (src/client/credentials.ts) decides which; the machine password, when one
 * is set, must be unlocked either way.
 */
import { Flags } from '@oclif/core';
import { resolveCmdopHome } from '../config/cmdop-home.js';
import { CmdopError } from '../errors.js';
import { createClient, type CmdopClient } from '../client/local-client.js';
import { resolveCredential } from '../client/credentials.js';
import { callWithBearer } from '../client/remote-client.js';
import { requireUnlocked } from '../identity/machine-password.js';

/** The flags every `connect` verb takes to choose its credential. */
export const credentialFlags = {
  'api-key': Flags.string({ description: 'Call as this workspace API key (key:NAME). Prefer CMDOP_API_KEY: a flag shows in the process list.', helpGroup: 'CREDENTIAL' }),
  workspace: Flags.string({ description: 'Call with the API key stored for this workspace (cmdop connect key set).', helpGroup: 'CREDENTIAL' }),
  share: Flags.string({ description: 'Call as a guest with this share token (cmdop connect share on the host).', helpGroup: 'CREDENTIAL' }),
  address: Flags.string({ description: 'HOST:PORT of the host, for a call with a bearer credential when this machine does not know where it is.', helpGroup: 'CREDENTIAL' }),
};

/** What the verbs pass in. */
export interface CredentialFlagValues {
  readonly 'api-key'?: string | undefined;
  readonly workspace?: string | undefined;
  readonly share?: string | undefined;
  readonly address?: string | undefined;
}

/** The client for this call: the daemon's, or a bearer client. */
export async function connectClient(flags: CredentialFlagValues): Promise<CmdopClient> {
  const home = resolveCmdopHome();
  const resolved = await resolveCredential({
    home,
    apiKey: flags['api-key'],
    share: flags.share,
    workspace: flags.workspace,
    notice: (line) => process.stderr.write(`note: ${line}\n`),
  });
  // With a machine password set, only an unlocked CLI may call hosts, whatever it calls with.
  await requireUnlocked(home);
  if (resolved.choice.kind === 'host') {
    if (flags.address !== undefined) {
      throw new CmdopError('invalid_input', '--address is for calls with an API key, an OAuth login or a share token; this call goes through the daemon, which knows its peers', {
        hint: 'Leave --address out, or add the host with `cmdop peers add NAME --address HOST:PORT`.',
      });
    }
    return createClient();
  }
  return createClient({ callTool: (call, options) => callWithBearer(call, { home, credential: resolved, address: flags.address, ...(options.signal === undefined ? {} : { signal: options.signal }) }) });
}
