import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { requireUnlocked } from '../../src/identity/machine-password.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { revokeFromWorkspace, type RevokeResult } from '../../src/daemon/workspace.js';

export default class WorkspaceRevoke extends BaseCommand {
  static override summary = 'Evict a host from the workspace for good (on the CA host).';
  static override description = [
    'Records the host as revoked and removes it from the roster. The CA daemon refuses its calls',
    '(renew and announce included) at once; every other host learns the revoked list at its next',
    'announce and refuses its calls from then on. Refusals are audited. The name stays issued,',
    'so no host can join under it again. There is no undo. With a machine password set, this needs an unlocked CLI (cmdop password unlock); a locked one exits 3.',
  ].join(' ');
  static override examples = ['<%= config.bin %> workspace revoke build-2', '<%= config.bin %> workspace revoke build-2 --json'];
  static override args = { host: Args.string({ required: true, ignoreStdin: true, description: 'The name of the host to revoke.' }) };

  async run(): Promise<RevokeResult> {
    const { args } = await this.parse(WorkspaceRevoke);
    const home = resolveCmdopHome();
    await requireUnlocked(home);
    const result = await revokeFromWorkspace(home, args.host);
    if (!this.jsonEnabled()) {
      this.log(result.newly_revoked ? `revoked ${result.host}` : `${result.host} was already revoked (${result.revoked_at})`);
    }
    return result;
  }
}
