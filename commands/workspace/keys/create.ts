import { Flags } from '@oclif/core';
import { BaseCommand } from '../../../src/cli/base-command.js';
import { requireUnlocked } from '../../../src/identity/machine-password.js';
import { parseDuration } from '../../../src/cli/duration.js';
import { resolveCmdopHome } from '../../../src/config/cmdop-home.js';
import { loadMembership } from '../../../src/daemon/membership.js';
import { reachableAddress } from '../../../src/daemon/workspace.js';
import { createApiKey, type CreatedApiKey } from '../../../src/identity/api-key.js';

interface CreateResult extends CreatedApiKey {
  readonly principal: string;
  readonly note: string;
}

const NOTE = 'This is the only time the key is shown: the CA host keeps only a hash of it.';

export default class WorkspaceKeysCreate extends BaseCommand {
  static override summary = 'Create a workspace API key for a CI runner or a user (on the CA host).';
  static override description = [
    "The key is printed once; only a hash of it is kept, in CMDOP_HOME/api-keys.json (0600). It carries the workspace CA fingerprint, so a client can check the hosts it calls, and the workspace name, the CA host name and where the CA host listens (the running daemon's address, else agent.listen), so a machine outside the workspace can find the hosts. It acts as the principal key:NAME, gated like any remote caller. Treat it as a secret.",
    'Exit codes: 0 created; 2 a bad name or --ttl, or the name is held by a key not revoked; 3 a machine password is set and this CLI is not unlocked (cmdop password unlock); 6 this host does not hold the workspace CA key.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> workspace keys create --name ci-deploy',
    '<%= config.bin %> workspace keys create --name ci-deploy --ttl 90d --json',
  ];
  static override flags = {
    name: Flags.string({ description: 'The key name: 1 to 64 characters of a-z, 0-9, . _ - (unique among keys not revoked).', required: true }),
    ttl: Flags.string({ description: 'How long the key works (30m, 24h, 90d; at most 3650d); default: no expiry.' }),
  };

  async run(): Promise<CreateResult> {
    const { flags } = await this.parse(WorkspaceKeysCreate);
    const ttlMs = flags.ttl === undefined ? undefined : parseDuration(flags.ttl, '--ttl');
    const home = resolveCmdopHome();
    // A key lets its holder call every host: with a machine password set, only an unlocked CLI mints one.
    await requireUnlocked(home);
    // The workspace and CA host (this one) the key names, from the same records `workspace invite` uses.
    const membership = await loadMembership(home);
    const locator = membership?.is_ca !== true ? {} : { workspace: membership.workspace_name, caHost: membership.ca_host_name, caAddress: await reachableAddress(home) };
    const created = await createApiKey(home, { name: flags.name, ttlMs, ...locator });
    const result: CreateResult = { ...created, principal: `key:${created.name}`, note: NOTE };
    if (!this.jsonEnabled()) {
      this.log(created.key);
      process.stderr.write(`created API key "${created.name}" (${created.id}), ${created.expires_at === null ? 'without expiry' : `valid until ${created.expires_at}`}\n${NOTE}\n`);
    }
    return result;
  }
}
