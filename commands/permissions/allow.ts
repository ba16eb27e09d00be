import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { renderRuleChange } from '../../src/cli/render.js';
import { addGlobalRule, type RuleChangeResult } from '../../src/cli/rule-change.js';

export default class PermissionsAllow extends BaseCommand {
  static override summary = 'Add a global allow rule: matching calls run without asking (unless a deny or the floor says otherwise).';
  static override description = 'RULE is tool or tool(glob) or tool(operation:glob); see the README for the grammar. The change is refused, and nothing written, if it would break a test in the tests: section of permissions.yaml.';
  static override examples = [
    "<%= config.bin %> permissions allow 'execute_command(git *)'",
    "<%= config.bin %> permissions allow 'read_file(~/projects/**)' --reason 'why this rule exists'",
    "<%= config.bin %> permissions allow 'execute_command(git *)' --json",
  ];
  static override args = { rule: Args.string({ ignoreStdin: true, description: 'The rule, e.g. execute_command(git *)', required: true }) };
  static override flags = { reason: Flags.string({ description: 'Why the rule exists; stored beside it and shown in decisions.' }) };

  async run(): Promise<RuleChangeResult> {
    const { args, flags } = await this.parse(PermissionsAllow);
    const result = await addGlobalRule('allow', args.rule, flags.reason);
    if (!this.jsonEnabled()) this.log(renderRuleChange(result));
    return result;
  }
}
