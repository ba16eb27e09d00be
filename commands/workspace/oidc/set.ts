import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../src/cli/base-command.js';
import { requireUnlocked } from '../../../src/identity/machine-password.js';
import { resolveCmdopHome } from '../../../src/config/cmdop-home.js';
import { validateOidcSettings } from '../../../src/identity/oidc.js';
import { oidcConfigPath, writeOidcConfig, type OidcConfig } from '../../../src/identity/oidc-config.js';
import { loadMembership } from '../../../src/daemon/membership.js';

interface OidcSetResult extends OidcConfig {
  readonly path: string;
  /** Whether this host is the CA host, whose setting every host of the workspace gets. */
  readonly workspace_wide: boolean;
  /** Set when the setting is weaker than it could be. */
  readonly warning: string | null;
}

const NO_AUDIENCE = 'without --audience, access tokens need only name the client id, which the ID tokens of the client do too; set --audience to the API audience your provider issues access tokens for';

export default class WorkspaceOidcSet extends BaseCommand {
  static override summary = "Set the workspace's OpenID provider: where users log in with `cmdop login`.";
  static override description = [
    "On the CA host this is the workspace's setting: every host gets it with its next announce (within one announce interval) and from then on accepts that provider's access tokens, as user:SUBJECT. On any other machine it only says where `cmdop login` goes.",
    'The issuer must be an https URL (http only on loopback). Access tokens must name --audience (or, without it, the client id). The provider must offer the device authorization grant and refresh tokens for the client.',
    'Exit codes: 0 set; 2 a bad issuer, client id or audience; 6 the file cannot be written.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> workspace oidc set --issuer https://login.example.com --client-id cmdop-cli',
    '<%= config.bin %> workspace oidc set --issuer https://login.example.com/realms/ops --client-id cmdop --audience cmdop-mesh --json',
  ];
  static override flags = {
    issuer: Flags.string({ description: "The provider's issuer URL, exactly as its discovery document states it.", required: true }),
    'client-id': Flags.string({ description: 'The public client registered for cmdop at the provider.', required: true }),
    audience: Flags.string({ description: 'The audience access tokens must carry (default: the client id).' }),
  };

  async run(): Promise<OidcSetResult> {
    const { flags } = await this.parse(WorkspaceOidcSet);
    const home = resolveCmdopHome();
    const settings = validateOidcSettings({ issuer: flags.issuer, clientId: flags['client-id'], audience: flags.audience });
    await requireUnlocked(home);
    const config: OidcConfig = { issuer: settings.issuer, client_id: settings.clientId, audience: settings.audience ?? null };
    await writeOidcConfig(home, config);
    const membership = await loadMembership(home);
    const result: OidcSetResult = { ...config, path: oidcConfigPath(home), workspace_wide: membership?.is_ca === true, warning: config.audience === null ? NO_AUDIENCE : null };
    if (!this.jsonEnabled()) {
      this.log(`OpenID provider set: ${config.issuer} (client ${config.client_id}${config.audience === null ? '' : `, audience ${config.audience}`})`);
      this.log(result.workspace_wide ? 'This is the CA host: every host accepts its access tokens from its next announce.' : 'Used by `cmdop login` on this machine.');
      if (result.warning !== null) process.stderr.write(`warning: ${result.warning}\n`);
    }
    return result;
  }
}
