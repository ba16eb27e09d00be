import { Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { resolveCmdopHome } from '../src/config/cmdop-home.js';
import { resolveCredential, type CredentialChoice } from '../src/client/credentials.js';
import { oauthStatus, type OauthStatus } from '../src/client/oauth-session.js';
import { readWorkspaceBook } from '../src/client/workspace-keys.js';

interface WhoamiResult extends CredentialChoice {
  readonly oauth: OauthStatus;
  readonly workspaces_with_keys: readonly string[];
  readonly active_workspace: string | null;
}

export default class Whoami extends BaseCommand {
  static override summary = 'Say which credential the connect verbs would call hosts with, and why.';
  static override description = [
    'The order: --share, then --api-key, CMDOP_API_KEY, --workspace NAME, the active workspace (the key stored last with `cmdop connect key set`), an OAuth login (`cmdop login`), and last this host\'s own certificate through its daemon. The output names the source that won, the principal the hosts will see (key:NAME, user:SUBJECT, guest:ID, host:NAME), and why each earlier source was passed over. No secret is ever printed.',
    'Exit codes: 0 when the flags are valid; 2 a malformed key or token; 4 --workspace names a workspace without a stored key.',
  ].join('\n\n');
  static override examples = ['<%= config.bin %> whoami', '<%= config.bin %> whoami --json', 'CMDOP_API_KEY=cmdop-key.… <%= config.bin %> whoami --json'];
  static override flags = {
    'api-key': Flags.string({ description: 'As the connect verbs take it.' }),
    workspace: Flags.string({ description: 'As the connect verbs take it.' }),
    share: Flags.string({ description: 'As the connect verbs take it.' }),
  };

  async run(): Promise<WhoamiResult> {
    const { flags } = await this.parse(Whoami);
    const home = resolveCmdopHome();
    const { choice } = await resolveCredential({ home, apiKey: flags['api-key'], workspace: flags.workspace, share: flags.share, notice: (line) => process.stderr.write(`note: ${line}\n`) });
    const book = await readWorkspaceBook(home);
    const result: WhoamiResult = {
      ...choice,
      oauth: await oauthStatus(home),
      workspaces_with_keys: book.workspaces.map((w) => w.name),
      active_workspace: book.active,
    };
    if (!this.jsonEnabled()) {
      this.log(`${choice.principal ?? (choice.kind === 'host' ? '(this machine\'s daemon)' : '(the provider names you)')}  (source: ${choice.source})`);
      this.log(`why: ${choice.why}`);
      for (const passed of choice.passed_over) this.log(`  passed over: ${passed}`);
    }
    return result;
  }
}
