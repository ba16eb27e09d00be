import { Args } from '@oclif/core';
import { BaseCommand } from '../../../src/cli/base-command.js';
import { requireUnlocked } from '../../../src/identity/machine-password.js';
import { resolveCmdopHome } from '../../../src/config/cmdop-home.js';
import { revokeApiKey, type ApiKeyInfo } from '../../../src/identity/api-key.js';

export default class WorkspaceKeysRevoke extends BaseCommand {
  static override summary = 'Revoke a workspace API key (on the CA host); it is refused from then on.';
  static override description = [
    'NAME is the key name as `cmdop workspace keys list` shows it. The record stays, marked revoked, so the list still shows when the key was last used; the name can then be reused.',
    'Exit codes: 0 revoked; 2 not a valid key name; 3 a machine password is set and this CLI is not unlocked (cmdop password unlock); 4 no key of that name is active.',
  ].join('\n\n');
  static override examples = ['<%= config.bin %> workspace keys revoke ci-deploy', '<%= config.bin %> workspace keys revoke ci-deploy --json'];
  static override args = { name: Args.string({ ignoreStdin: true, description: 'The name of the key to revoke.', required: true }) };

  async run(): Promise<ApiKeyInfo> {
    const { args } = await this.parse(WorkspaceKeysRevoke);
    const home = resolveCmdopHome();
    await requireUnlocked(home);
    const result = await revokeApiKey(home, args.name);
    if (!this.jsonEnabled()) this.log(`revoked API key "${result.name}" (${result.id}) at ${result.revoked_at ?? ''}`);
    return result;
  }
}
