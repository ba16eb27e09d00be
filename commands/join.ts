import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../src/cli/base-command.js';
import { resolveCmdopHome } from '../src/config/cmdop-home.js';
import type { Membership } from '../src/daemon/membership.js';
import { joinExistingWorkspace } from '../src/daemon/workspace.js';

export default class Join extends BaseCommand {
  static override summary = 'Join a workspace with a token from `cmdop workspace invite`.';
  static override description = [
    "Checks the server against the CA fingerprint in the token, sends a certificate request for",
    "this host's name and keeps the certificate it gets back. A used, expired or forged token, a",
    'name already taken, or a server of another workspace: nothing is written. Start the daemon',
    'afterwards with `cmdop agent start`.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> join cmdop-join.eyJ2Ijox... --server 10.0.0.5:8470',
    '<%= config.bin %> join "$TOKEN" --server 10.0.0.5:8470 --name build-2 --json',
  ];
  static override args = { token: Args.string({ required: true, ignoreStdin: true, description: 'The join token.' }) };
  static override flags = {
    server: Flags.string({ description: "HOST:PORT of the CA host's daemon; default the address in the token." }),
    name: Flags.string({ description: "This host's name in the workspace (one DNS label); default the machine's host name." }),
  };

  async run(): Promise<Membership> {
    const { args, flags } = await this.parse(Join);
    const membership = await joinExistingWorkspace({ home: resolveCmdopHome(), token: args.token, server: flags.server, hostName: flags.name });
    if (!this.jsonEnabled()) {
      this.log(`joined workspace "${membership.workspace_name}" as ${membership.host_name} (CA host ${membership.ca_host_name} at ${membership.ca_address})`);
      this.log('Start the daemon with `cmdop agent start`.');
    }
    return membership;
  }
}
