import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { openHostContext } from '../../src/cli/host-context.js';
import { getConfigValue, listConfigValues, type ConfigValue } from '../../src/config/config-file.js';

export default class ConfigGet extends BaseCommand {
  static override summary = 'Show a setting of config.yaml, or all of them.';
  static override examples = ['<%= config.bin %> config get permissions.enabled', '<%= config.bin %> config get', '<%= config.bin %> config get permissions.self_bypass --json'];
  static override args = { key: Args.string({ ignoreStdin: true, description: 'The dotted key, e.g. permissions.enabled.', required: false }) };

  async run(): Promise<ConfigValue | { settings: readonly ConfigValue[] }> {
    const { args } = await this.parse(ConfigGet);
    const context = await openHostContext();
    if (args.key === undefined) {
      const settings = await listConfigValues(context.cmdopHome);
      if (!this.jsonEnabled()) for (const s of settings) this.log(`${s.key}: ${String(s.value)}${s.source === 'default' ? '  (default)' : ''}`);
      return { settings };
    }
    const value = await getConfigValue(context.cmdopHome, args.key);
    if (!this.jsonEnabled()) this.log(String(value.value));
    return value;
  }
}
