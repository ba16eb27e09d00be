import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { requireUnlocked } from '../../src/identity/machine-password.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { removePeer, type RosterRecord } from '../../src/daemon/roster.js';

export default class PeersRemove extends BaseCommand {
  static override summary = "Remove a host's manual entry (or, with none, its roster entry).";
  static override description = 'A host still in the workspace comes back in the roster at its next announce; to evict one, run `cmdop workspace revoke HOST` on the CA host. With a machine password set, this needs an unlocked CLI (cmdop password unlock); a locked one exits 3.';
  static override examples = ['<%= config.bin %> peers remove build-2', '<%= config.bin %> peers remove build-2 --json'];
  static override args = { name: Args.string({ required: true, ignoreStdin: true, description: 'The host name.' }) };

  async run(): Promise<RosterRecord> {
    const { args } = await this.parse(PeersRemove);
    const home = resolveCmdopHome();
    await requireUnlocked(home);
    const removed = await removePeer(home, args.name);
    if (!this.jsonEnabled()) this.log(`removed ${removed.name} (${removed.source})`);
    return removed;
  }
}
