import { Args } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { renderRuleChange } from '../../src/cli/render.js';
import { revokeGlobalRule, type RuleChangeResult } from '../../src/cli/rule-change.js';

export default class PermissionsRevoke extends BaseCommand {
  static override summary = 'Remove a global rule, whichever list (allow, deny, ask) holds it.';
  static override description = 'RULE must be written exactly as `cmdop permissions list` shows it. Exit code 4 when no such rule exists.';
  static override examples = ["<%= config.bin %> permissions revoke 'execute_command(git *)'", "<%= config.bin %> permissions revoke 'write_file' --json"];
  static override args = { rule: Args.string({ ignoreStdin: true, description: 'The rule to remove, as listed.', required: true }) };

  async run(): Promise<RuleChangeResult> {
    const { args } = await this.parse(PermissionsRevoke);
    const result = await revokeGlobalRule(args.rule);
    if (!this.jsonEnabled()) this.log(renderRuleChange(result));
    return result;
  }
}
