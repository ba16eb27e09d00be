import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { requireUnlocked } from '../../src/identity/machine-password.js';
import { parseDuration } from '../../src/cli/duration.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { loadConfig } from '../../src/config/config-file.js';
import { inviteToWorkspace, reachableAddress, type InviteResult } from '../../src/daemon/workspace.js';

export default class WorkspaceInvite extends BaseCommand {
  static override summary = 'Mint a one-time join token for a new host (on the CA host).';
  static override description = [
    'The token carries the CA fingerprint, so the joining host can check it talks to this',
    'workspace, and the address to join through (agent.listen unless --address is given).',
    'It joins one host once, before it expires. Treat it as a secret.',
    'With a machine password set, this needs an unlocked CLI (cmdop password unlock); a locked one exits 3.',
  ].join('\n');
  static override examples = ['<%= config.bin %> workspace invite', '<%= config.bin %> workspace invite --ttl 2h --json', '<%= config.bin %> workspace invite --address 10.0.0.5:8470'];
  static override flags = {
    ttl: Flags.string({ description: 'How long the token is valid (30s, 30m, 24h, 7d; at most 30d).', default: '30m' }),
    address: Flags.string({ description: 'HOST:PORT the new host joins through; default where the running daemon listens, else agent.listen.' }),
  };

  async run(): Promise<InviteResult> {
    const { flags } = await this.parse(WorkspaceInvite);
    const ttlMs = parseDuration(flags.ttl, '--ttl');
    const home = resolveCmdopHome();
    // A token lets a new host into the workspace: with a machine password set, only an unlocked CLI mints one.
    await requireUnlocked(home);
    // The running daemon knows the port it really listens on (agent.listen may say port 0);
    // agent.listen as written is the fallback, so a port-0 address is refused by name.
    const address = flags.address ?? (await reachableAddress(home)) ?? (await loadConfig(home)).agent.listen;
    const result = await inviteToWorkspace(home, ttlMs, address);
    if (!this.jsonEnabled()) {
      this.log(result.token);
      process.stderr.write(`valid until ${result.expires_at}; on the new host run:\n  cmdop join ${result.token} --server ${result.server} --name NAME\n`);
    }
    return result;
  }
}
