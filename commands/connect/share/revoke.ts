import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../src/cli/base-command.js';
import { requireUnlocked } from '../../../src/identity/machine-password.js';
import { resolveCmdopHome } from '../../../src/config/cmdop-home.js';
import { CmdopError } from '../../../src/errors.js';
import { revokeAllShares, revokeShare, type ShareInfo } from '../../../src/identity/share-link.js';

interface RevokeResult {
  /** The links revoked now: one for ID, every active one for --all (possibly none). */
  readonly revoked: readonly ShareInfo[];
}

export default class ConnectShareRevoke extends BaseCommand {
  static override summary = 'Revoke a share link of this host, or all of them; they are refused from then on.';
  static override description = [
    'ID is the link id as `cmdop connect share list` shows it; --all revokes every active link. Give exactly one of them. The records stay, marked revoked, so the list still shows when each link was last used.',
    'Exit codes: 0 revoked (with --all, also when none was active); 2 neither or both of ID and --all, or not a link id; 3 the machine is locked (cmdop password unlock); 4 no such link, or it was already revoked.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> connect share revoke 3f2a9c0d1b7e4f5a8c6d2e1f0a9b8c7d',
    '<%= config.bin %> connect share revoke --all --json',
  ];
  static override args = { id: Args.string({ ignoreStdin: true, description: 'The id of the link to revoke.' }) };
  static override flags = { all: Flags.boolean({ description: 'Revoke every active share link of this host.' }) };

  async run(): Promise<RevokeResult> {
    const { args, flags } = await this.parse(ConnectShareRevoke);
    if ((args.id === undefined) === !flags.all) {
      throw new CmdopError('invalid_input', flags.all ? 'give either a link ID or --all, not both' : 'give the ID of the link to revoke, or --all', {
        hint: 'See the links with `cmdop connect share list`.',
      });
    }
    const home = resolveCmdopHome();
    await requireUnlocked(home);
    const revoked = args.id === undefined ? await revokeAllShares(home) : [await revokeShare(home, args.id)];
    if (!this.jsonEnabled()) {
      if (revoked.length === 0) this.log('no active share links to revoke');
      for (const share of revoked) this.log(`revoked share link ${share.id} (for ${share.host}) at ${share.revoked_at ?? ''}`);
    }
    return { revoked };
  }
}
