import { BaseCommand } from '../src/cli/base-command.js';
import { resolveCmdopHome } from '../src/config/cmdop-home.js';
import { logout } from '../src/client/oauth-session.js';

export default class Logout extends BaseCommand {
  static override summary = 'Forget the OAuth login of this machine: its refresh and access tokens.';
  static override description = [
    'Removes the tokens from the secret store and CMDOP_HOME/oauth.json. Access tokens already handed out stay valid at the hosts until they expire (minutes); to cut a user off at once, disable them at the provider.',
    'Exit codes: 0 logged out, or there was no login.',
  ].join('\n\n');
  static override examples = ['<%= config.bin %> logout', '<%= config.bin %> logout --json'];

  async run(): Promise<{ logged_out: boolean }> {
    await this.parse(Logout);
    const removed = await logout(resolveCmdopHome(), (line) => process.stderr.write(`note: ${line}\n`));
    if (!this.jsonEnabled()) this.log(removed ? 'logged out: the tokens were removed' : 'there was no login on this machine');
    return { logged_out: removed };
  }
}
