import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { renderRuleChange } from '../../src/cli/render.js';
import { addGlobalRule, type RuleChangeResult } from '../../src/cli/rule-change.js';

export default class PermissionsAsk extends BaseCommand {
  static override summary = "Add a global ask rule: matching calls wait for the operator's answer (60 s, then denied).";
  static override description = 'RULE is tool or tool(glob) or tool(operation:glob); see the README for the grammar. The change is refused, and nothing written, if it would break a test in the tests: section of permissions.yaml.';
  static override examples = [
    "<%= config.bin %> permissions ask 'write_file'",
    "<%= config.bin %> permissions ask 'connect(exec:prod-*)' --reason 'why this rule exists'",
    "<%= config.bin %> permissions ask 'write_file' --json",
  ];
  static override args = { rule: Args.string({ ignoreStdin: true, description: 'The rule, e.g. write_file', required: true }) };
  static override flags = { reason: Flags.string({ description: 'Why the rule exists; stored beside it and shown in decisions.' }) };

  async run(): Promise<RuleChangeResult> {
    const { args, flags } = await this.parse(PermissionsAsk);
    const result = await addGlobalRule('ask', args.rule, flags.reason);
    if (!this.jsonEnabled()) this.log(renderRuleChange(result));
    return result;
  }
}
