import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { openHostContext } from '../../src/cli/host-context.js';
import { requireUnlocked } from '../../src/identity/machine-password.js';
import { setConfigValue, type ConfigChange } from '../../src/config/config-file.js';

export default class ConfigSet extends BaseCommand {
  static override summary = 'Change a setting in config.yaml.';
  static override description = 'permissions.enabled false turns rules and modes off; the floor still applies. permissions.self_bypass false gates calls from this host to itself too.';
  static override examples = ['<%= config.bin %> config set permissions.enabled false', '<%= config.bin %> config set permissions.self_bypass false --json'];
  static override args = {
    key: Args.string({ ignoreStdin: true, description: 'The dotted key.', required: true }),
    value: Args.string({ ignoreStdin: true, description: 'The new value (true or false).', required: true }),
  };

  async run(): Promise<ConfigChange> {
    const { args } = await this.parse(ConfigSet);
    const context = await openHostContext();
    await requireUnlocked(context.cmdopHome);
    const change = await setConfigValue(context.cmdopHome, args.key, args.value);
    if (!this.jsonEnabled()) this.log(change.changed ? `${change.key}: ${String(change.previous)} -> ${String(change.value)}` : `${change.key} is already ${String(change.value)}; nothing changed`);
    return change;
  }
}
