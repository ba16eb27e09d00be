import { BaseCommand } from '../src/cli/base-command.js';
import { resolveCmdopHome } from '../src/config/cmdop-home.js';
import { login, loginSettings, type OauthStatus } from '../src/client/oauth-session.js';
import { loadMembership } from '../src/daemon/membership.js';
import { currentCredentials } from '../src/daemon/workspace-credentials.js';

interface LoginResult extends OauthStatus {
  readonly principal: string | null;
}

export default class Login extends BaseCommand {
  static override summary = "Log in with OAuth at the workspace's OpenID provider (device flow).";
  static override description = [
    'Prints a verification URL and a code: open the URL on any device, enter the code and sign in. Meanwhile this command waits, polling the provider as it asks (slowing down when told to). The refresh token is kept in the OS keyring (or CMDOP_HOME/secrets.json, 0600); the daemon refreshes the access token before it expires, so later calls never prompt.',
    'The provider is the one set with `cmdop workspace oidc set` (on this machine, or on the CA host for the whole workspace). Hosts gate calls made with the login as user:SUBJECT.',
    'Exit codes: 0 logged in; 3 the sign-in was refused or the code expired; 6 no provider is configured, or it offers no device flow; 7 the provider cannot be reached.',
  ].join('\n\n');
  static override examples = ['<%= config.bin %> login', '<%= config.bin %> login --json'];

  async run(): Promise<LoginResult> {
    await this.parse(Login);
    const home = resolveCmdopHome();
    const membership = await loadMembership(home);
    const workspaceOidc = membership === undefined ? null : (await currentCredentials(home, membership.is_ca)).oidc;
    const settings = await loginSettings(home, workspaceOidc);
    const status = await login(home, settings, {
      prompt: (p) => {
        process.stderr.write(`To log in, open ${p.verificationUriComplete ?? p.verificationUri}\nand enter the code: ${p.userCode}\n`);
        process.stderr.write(`Waiting for you to approve (the code expires at ${p.expiresAt.toISOString()}) …\n`);
      },
      onSlowDown: (ms) => process.stderr.write(`the provider asked to poll more slowly: every ${Math.round(ms / 1000)} s now\n`),
      notice: (line) => process.stderr.write(`note: ${line}\n`),
    });
    const result: LoginResult = { ...status, principal: status.subject === null ? null : `user:${status.subject}` };
    if (!this.jsonEnabled()) this.log(`logged in${status.subject === null ? '' : ` as user:${status.subject}`} at ${status.issuer ?? settings.issuer}`);
    return result;
  }
}
