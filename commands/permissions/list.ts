import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { loadHostPolicy, openHostContext } from '../../src/cli/host-context.js';
import { createClient } from '../../src/client/local-client.js';
import { CmdopError } from '../../src/errors.js';
import { ruleId } from '../../src/gate/rule-index.js';
import { RULE_EFFECTS, type Mode, type RuleEffect, type RuleScope } from '../../src/gate/types.js';

interface ListedRule {
  readonly rule: string;
  readonly effect: RuleEffect;
  readonly scope: RuleScope;
  readonly rule_id: string;
  readonly reason: string | null;
  readonly created_at: string | null;
}

interface ListResult {
  readonly mode: Mode;
  readonly enabled: boolean;
  readonly file: string;
  readonly rules: readonly ListedRule[];
  readonly note?: string;
}

export default class PermissionsList extends BaseCommand {
  static override summary = "List this host's rules and mode.";
  static override description = 'Global rules live in permissions.yaml; session rules live in the running daemon\'s memory until it restarts.';
  static override examples = ['<%= config.bin %> permissions list', '<%= config.bin %> permissions list --mode global --json', '<%= config.bin %> permissions list --mode session'];
  static override flags = {
    mode: Flags.string({ description: 'Which rules to list.', options: ['session', 'global'] }),
  };

  async run(): Promise<ListResult> {
    const { flags } = await this.parse(PermissionsList);
    const context = await openHostContext();
    const { doc, config } = await loadHostPolicy(context);
    const file = `${context.cmdopHome}/permissions.yaml`;
    const rules: ListedRule[] = [];
    let note: string | undefined;
    if (flags.mode !== 'session') {
      for (const effect of RULE_EFFECTS) {
        for (const rule of doc[effect]) {
          rules.push({ rule, effect, scope: 'global', rule_id: ruleId(rule), reason: doc.reasons[rule] ?? null, created_at: doc.created_at[rule] ?? null });
        }
      }
    }
    if (flags.mode !== 'global') {
      try {
        const session = await createClient({ home: context.cmdopHome }).sessionRules({ deadlineMs: 5_000 });
        for (const effect of RULE_EFFECTS) {
          for (const rule of session[effect]) rules.push({ rule, effect, scope: 'session', rule_id: ruleId(rule), reason: null, created_at: null });
        }
      } catch (error) {
        if (!(error instanceof CmdopError) || error.code !== 'unavailable') throw error;
        note = 'session rules live in the running daemon; no daemon answered, so there are none to show';
      }
    }
    const result: ListResult = { mode: doc.mode, enabled: config.permissions.enabled, file, rules, ...(note === undefined ? {} : { note }) };
    if (!this.jsonEnabled()) this.log(render(result));
    return result;
  }
}

function render(result: ListResult): string {
  const lines = [`mode: ${result.mode}${result.enabled ? '' : '  (gate disabled: permissions.enabled is false; only the floor applies)'}`, `file: ${result.file}`];
  for (const effect of RULE_EFFECTS) {
    const rules = result.rules.filter((r) => r.effect === effect);
    lines.push(`${effect}:${rules.length === 0 ? ' (none)' : ''}`);
    for (const r of rules) lines.push(`  ${r.rule}${r.scope === 'session' ? '  [session]' : ''}${r.reason === null ? '' : `  # ${r.reason}`}`);
  }
  if (result.note !== undefined) lines.push(`note: ${result.note}`);
  return lines.join('\n');
}
