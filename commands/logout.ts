import { BaseCommand } from '../src/cli/base-command.js';
import { resolveCmdopHome } from '../src/config/cmdop-home.js';
import { logout, type LogoutResult } from '../src/client/oauth-session.js';

export default class Logout extends BaseCommand {
  static override summary = 'Forget the OAuth login of this machine: its refresh and access tokens.';
  static override description = [
    'Asks the provider to revoke the refresh token (RFC 7009, when it offers that), then removes the tokens from the secret store and CMDOP_HOME/oauth.json; the local session is forgotten even when the provider cannot be reached, and the output says so. Access tokens already handed out stay valid at the hosts until they expire (minutes); to cut a user off at once, disable them at the provider.',
    'Exit codes: 0 logged out, or there was no login.',
  ].join('\n\n');
  static override examples = ['<%= config.bin %> logout', '<%= config.bin %> logout --json'];

  async run(): Promise<LogoutResult> {
    await this.parse(Logout);
    const result = await logout(resolveCmdopHome(), (line) => process.stderr.write(`note: ${line}\n`));
    if (!this.jsonEnabled()) {
      this.log(result.logged_out ? 'logged out: the tokens were removed' : 'there was no login on this machine');
      if (result.revoked_at_provider === true) this.log('the provider revoked the refresh token');
      if (result.revocation_error !== null) process.stderr.write(`warning: the provider could not revoke the refresh token (${result.revocation_error}); it stays valid there until it expires\n`);
    }
    return result;
  }
}
