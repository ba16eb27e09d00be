/**
 * Compiled rules, indexed so that deciding costs about the same with ten thousand rules as
 * with ten: by tool, then by the program a command glob names or the literal leading
 * segments of a path glob. Only rules that could match are tested.
 */
import { ruleId } from '../shared/rule-id.js';
import { segmentsOf } from '../../floor/paths.js';
import { compileGlob, type CompiledGlob, type GlobOptions } from './glob.js';
import type { ParsedRule } from './rule-grammar.js';
import { TOOLS, type RuleEffect, type RuleScope, type TargetKind, type ToolName } from './types.js';

export interface CompiledRule {
  readonly text: string;
  /** sha256 of the rule text, hex: the `rule_id` of audit lines. */
  readonly id: string;
  readonly effect: RuleEffect;
  readonly scope: RuleScope;
  readonly tool: ToolName;
  readonly operation: string | undefined;
  readonly negated: boolean;
  readonly glob: CompiledGlob | undefined;
  /** Why the rule exists, from `reasons:` in permissions.yaml or `--reason`. */
  readonly note: string | undefined;
}

export { ruleId } from '../shared/rule-id.js';

/** Compiles one parsed rule for one scope and effect. */
export function compileRule(parsed: ParsedRule, effect: RuleEffect, scope: RuleScope, options: GlobOptions, note?: string): CompiledRule {
  const kind = TOOLS[parsed.tool].target;
  return Object.freeze({
    text: parsed.text,
    id: ruleId(parsed.text),
    effect,
    scope,
    tool: parsed.tool,
    operation: parsed.operation,
    negated: parsed.negated,
    glob: parsed.glob === undefined ? undefined : compileGlob(parsed.glob, kind, options),
    note,
  });
}

/** True when the rule matches one target (a simple command's text, a path, a host name). */
export function ruleMatches(rule: CompiledRule, target: string, operation: string | undefined): boolean {
  if (rule.operation !== undefined && rule.operation !== operation) return false;
  if (rule.glob === undefined) return true;
  return rule.glob.regex.test(target) !== rule.negated;
}

interface TrieNode {
  readonly children: Map<string, TrieNode>;
  readonly rules: CompiledRule[];
}

function createTrieNode(): TrieNode {
  return { children: new Map(), rules: [] };
}

/** The rules of one tool, one effect and one scope, indexed by what their globs spell literally. */
export class RuleBucket {
  readonly size: number;
  /** Rules with no glob, negated rules, and globs with no literal anchor: always tested. */
  private readonly unanchored: readonly CompiledRule[];
  /** Commands: rules by program; host names: rules by exact name. */
  private readonly byKey: ReadonlyMap<string, readonly CompiledRule[]>;
  /** Paths: rules by their literal leading segments. */
  private readonly trie: TrieNode;
  /** Fully literal rules by their text, for whole-line equality on commands. */
  private readonly byLiteral: ReadonlyMap<string, readonly CompiledRule[]>;
  private readonly kind: TargetKind;

  constructor(kind: TargetKind, rules: readonly CompiledRule[]) {
    this.kind = kind;
    this.size = rules.length;
    const unanchored: CompiledRule[] = [];
    const byKey = new Map<string, CompiledRule[]>();
    const byLiteral = new Map<string, CompiledRule[]>();
    const trie = createTrieNode();
    for (const rule of rules) {
      const glob = rule.glob;
      if (glob?.literal !== undefined && !rule.negated) {
        // A rule without wildcards matches one target only: found by equality, never scanned.
        push(byLiteral, kind === 'hostname' ? glob.literal.toLowerCase() : glob.literal, rule);
        continue;
      }
      if (glob === undefined || rule.negated || glob.anchor.length === 0) {
        unanchored.push(rule);
      } else if (kind === 'path') {
        let node = trie;
        for (const segment of glob.anchor) {
          let next = node.children.get(segment);
          if (next === undefined) {
            next = createTrieNode();
            node.children.set(segment, next);
          }
          node = next;
        }
        node.rules.push(rule);
      } else {
        push(byKey, kind === 'hostname' ? (glob.anchor[0] as string).toLowerCase() : (glob.anchor[0] as string), rule);
      }
    }
    this.unanchored = unanchored;
    this.byKey = byKey;
    this.byLiteral = byLiteral;
    this.trie = trie;
  }

  /**
   * The first rule matching `target`. For commands, `programs` are the keys to look under
   * (the program as written and, for deny rules, its base name).
   */
  find(target: string, operation: string | undefined, programs: readonly string[] = []): CompiledRule | undefined {
    if (this.size === 0) return undefined;
    const literal = this.findLiteral(target, operation);
    if (literal !== undefined) return literal;
    for (const rule of this.unanchored) if (ruleMatches(rule, target, operation)) return rule;
    if (this.kind === 'path') {
      let node: TrieNode | undefined = this.trie;
      const segments = segmentsOf(target);
      for (let i = 0; node !== undefined; i++) {
        for (const rule of node.rules) if (ruleMatches(rule, target, operation)) return rule;
        const segment = segments[i];
        node = segment === undefined ? undefined : node.children.get(segment);
      }
      return undefined;
    }
    const keys = this.kind === 'hostname' ? [target.toLowerCase()] : programs;
    for (const key of keys) {
      const rules = this.byKey.get(key);
      if (rules === undefined) continue;
      for (const rule of rules) if (ruleMatches(rule, target, operation)) return rule;
    }
    return undefined;
  }

  /** A fully literal rule equal to the whole target: how an exact rule allows an opaque line. */
  findLiteral(target: string, operation: string | undefined): CompiledRule | undefined {
    const rules = this.byLiteral.get(this.kind === 'hostname' ? target.toLowerCase() : target);
    return rules?.find((rule) => rule.operation === undefined || rule.operation === operation);
  }
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list === undefined) map.set(key, [value]);
  else list.push(value);
}
