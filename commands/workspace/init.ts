import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { loadConfig } from '../../src/config/config-file.js';
import type { Membership } from '../../src/daemon/membership.js';
import { initWorkspace } from '../../src/daemon/workspace.js';

export default class WorkspaceInit extends BaseCommand {
  static override summary = 'Create a workspace, with its certificate authority on this host.';
  static override description = [
    'Makes the workspace CA (its key stays in CMDOP_HOME/tls, 0600) and this host\'s certificate.',
    'Other hosts join with a token from `cmdop workspace invite`. `cmdop agent start` does this',
    'by itself, with the name "default", when the host has no workspace yet.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> workspace init --name lab',
    '<%= config.bin %> workspace init --name lab --host-name build-1 --json',
  ];
  static override flags = {
    name: Flags.string({ description: 'Workspace name (letters, digits, space, . _ -).', default: 'default' }),
    'host-name': Flags.string({ description: "This host's name in the workspace (one DNS label); default the machine's host name." }),
  };

  async run(): Promise<Membership> {
    const { flags } = await this.parse(WorkspaceInit);
    const home = resolveCmdopHome();
    const config = await loadConfig(home);
    const membership = await initWorkspace({ home, name: flags.name, hostName: flags['host-name'], address: config.agent.listen });
    if (!this.jsonEnabled()) {
      this.log(`created workspace "${membership.workspace_name}" (${membership.workspace_id}); this host is ${membership.host_name}, the CA host`);
      this.log('Start the daemon with `cmdop agent start`, then invite hosts with `cmdop workspace invite`.');
    }
    return membership;
  }
}
