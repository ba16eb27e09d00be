/**
 * A compiled policy: mode, the gate switch, and global and session rules compiled and
 * indexed once. Compiling never half-applies: one bad rule and nothing is compiled.
 */
import { homedir } from 'node:os';
import { CmdopError } from '../errors.js';
import { parseRule } from './rule-grammar.js';
import { compileRule, RuleBucket, type CompiledRule } from './rule-index.js';
import { MODES, RULE_EFFECTS, TOOLS, TOOL_NAMES, type Mode, type RuleEffect, type RuleScope, type ToolName } from './types.js';

/** Rule texts by effect, as permissions.yaml holds them. */
export interface RuleLists {
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly ask: readonly string[];
}

export const EMPTY_RULES: RuleLists = Object.freeze({ allow: [], deny: [], ask: [] });

export interface PolicyInput {
  readonly mode: Mode;
  /** `permissions.enabled`: false means no rule or mode applies, only the floor. */
  readonly enabled: boolean;
  /** Global rules (permissions.yaml). */
  readonly rules: RuleLists;
  /** Session rules (the daemon's memory). */
  readonly session?: RuleLists | undefined;
  /** Why each rule exists, by rule text. */
  readonly reasons?: Readonly<Record<string, string>> | undefined;
  /** The receiving user's home, for `~` in path globs; defaults to this process's home. */
  readonly home?: string | undefined;
}

type Buckets = Readonly<Record<ToolName, Readonly<Record<RuleEffect, RuleBucket>>>>;

export interface Policy {
  readonly mode: Mode;
  readonly enabled: boolean;
  readonly home: string;
  readonly input: PolicyInput;
  readonly global: Buckets;
  readonly session: Buckets;
  /** Every compiled rule, global then session, for listing. */
  readonly rules: readonly CompiledRule[];
}

function compileScope(lists: RuleLists, scope: RuleScope, home: string, reasons: Readonly<Record<string, string>>): { buckets: Buckets; rules: CompiledRule[] } {
  const byTool = new Map<ToolName, Record<RuleEffect, CompiledRule[]>>();
  for (const tool of TOOL_NAMES) byTool.set(tool, { allow: [], deny: [], ask: [] });
  const all: CompiledRule[] = [];
  for (const effect of RULE_EFFECTS) {
    for (const text of lists[effect]) {
      const parsed = parseRule(text);
      const rule = compileRule(parsed, effect, scope, { home }, reasons[parsed.text]);
      byTool.get(parsed.tool)?.[effect].push(rule);
      all.push(rule);
    }
  }
  const buckets = {} as Record<ToolName, Record<RuleEffect, RuleBucket>>;
  for (const tool of TOOL_NAMES) {
    const lists = byTool.get(tool) as Record<RuleEffect, CompiledRule[]>;
    const kind = TOOLS[tool].target;
    buckets[tool] = Object.freeze({
      allow: new RuleBucket(kind, lists.allow),
      deny: new RuleBucket(kind, lists.deny),
      ask: new RuleBucket(kind, lists.ask),
    });
  }
  return { buckets: Object.freeze(buckets), rules: all };
}

/** Compiles a policy, or throws CmdopError('invalid_input') naming the first bad rule. */
export function compilePolicy(input: PolicyInput): Policy {
  if (!MODES.includes(input.mode)) {
    throw new CmdopError('invalid_input', `unknown mode "${input.mode}"`, { hint: `Use one of: ${MODES.join(', ')}.` });
  }
  const home = input.home ?? homedir();
  const reasons = input.reasons ?? {};
  const global = compileScope(input.rules, 'global', home, reasons);
  const session = compileScope(input.session ?? EMPTY_RULES, 'session', home, reasons);
  return Object.freeze({
    mode: input.mode,
    enabled: input.enabled,
    home,
    input,
    global: global.buckets,
    session: session.buckets,
    rules: Object.freeze([...global.rules, ...session.rules]),
  });
}

/** The same policy with its session rules replaced. */
export function withSessionRules(policy: Policy, session: RuleLists): Policy {
  return compilePolicy({ ...policy.input, session });
}
