import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { loadHostPolicy, openHostContext } from '../../src/cli/host-context.js';
import { renderRuleChange } from '../../src/cli/render.js';
import { changeMode, type RuleChangeResult } from '../../src/cli/rule-change.js';
import { MODES } from '../../src/gate/types.js';

export default class PermissionsMode extends BaseCommand {
  static override summary = 'Show or set the mode: what happens to a call no rule matches.';
  static override description = [
    'default: read tools allowed, dangerous tools ask.',
    'strict:  read tools ask, dangerous tools denied.',
    'bypass:  everything allowed (the floor still applies). For throwaway machines only.',
  ].join('\n');
  static override examples = ['<%= config.bin %> permissions mode', '<%= config.bin %> permissions mode strict', '<%= config.bin %> permissions mode --json'];
  static override args = { mode: Args.string({ ignoreStdin: true, description: 'The new mode.', options: [...MODES], required: false }) };

  async run(): Promise<RuleChangeResult | { mode: string; file: string }> {
    const { args } = await this.parse(PermissionsMode);
    if (args.mode === undefined) {
      const context = await openHostContext();
      const { doc } = await loadHostPolicy(context);
      if (!this.jsonEnabled()) this.log(doc.mode);
      return { mode: doc.mode, file: `${context.cmdopHome}/permissions.yaml` };
    }
    const result = await changeMode(args.mode);
    if (!this.jsonEnabled()) this.log(renderRuleChange(result));
    return result;
  }
}
