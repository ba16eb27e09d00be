import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { requireUnlocked } from '../../src/identity/machine-password.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { isListenAddress } from '../../src/config/config-file.js';
import { addManualPeer, type RosterRecord } from '../../src/daemon/roster.js';
import { CmdopError } from '../../src/errors.js';

export default class PeersAdd extends BaseCommand {
  static override summary = 'Set where to reach a host by hand, overriding the workspace roster.';
  static override description = 'The host must still present a certificate of this workspace naming it; the address only says where to look. With a machine password set, this needs an unlocked CLI (cmdop password unlock); a locked one exits 3.';
  static override examples = ['<%= config.bin %> peers add build-2 --address 10.0.0.7:8470', '<%= config.bin %> peers add db --address [fd00::5]:8470 --json'];
  static override args = { name: Args.string({ required: true, ignoreStdin: true, description: 'The host name.' }) };
  static override flags = { address: Flags.string({ required: true, description: 'HOST:PORT of its daemon.' }) };

  async run(): Promise<RosterRecord> {
    const { args, flags } = await this.parse(PeersAdd);
    if (!isListenAddress(flags.address) || flags.address.endsWith(':0')) {
      throw new CmdopError('invalid_input', `--address must be HOST:PORT (port 1 to 65535), not ${JSON.stringify(flags.address)}`, { hint: 'For example: --address 10.0.0.7:8470' });
    }
    const home = resolveCmdopHome();
    // Where a name is reached decides where this host's calls go: a change needs an unlocked CLI.
    await requireUnlocked(home);
    const record = await addManualPeer(home, args.name, flags.address);
    if (!this.jsonEnabled()) this.log(`${record.name} → ${record.address} (manual)`);
    return record;
  }
}
