/** Plain-text rendering of command results, for people; `--json` prints the values themselves. */
import type { GateDecision, GateRequest } from '../gate/types.js';
import type { PolicyTestResult } from './host-context.js';
import type { RuleChangeResult } from './rule-change.js';

/** One line saying what a rule or mode change did. */
export function renderRuleChange(result: RuleChangeResult): string {
  switch (result.action) {
    case 'add':
      if (result.status === 'unchanged') return `${result.rule ?? ''} is already in ${result.effect ?? ''}; nothing changed`;
      if (result.status === 'reason_updated') return `updated the reason of ${result.effect ?? ''} rule ${result.rule ?? ''}`;
      return `added ${result.effect ?? ''} rule ${result.rule ?? ''}`;
    case 'revoke':
      return `revoked ${result.rule ?? ''} (was in ${(result.removed_from ?? []).join(', ')})`;
    case 'mode':
      return result.status === 'changed' ? `mode: ${result.previous_mode ?? ''} -> ${result.mode ?? ''}` : `mode is already ${result.mode ?? ''}; nothing changed`;
  }
}

/** A request as `tool(target)`. */
export function formatRequest(request: GateRequest): string {
  const op = request.operation === undefined ? '' : `${request.operation}:`;
  return `${request.tool}(${op}${request.target})`;
}

/** A decision as the first word in capitals, then where it came from and why. */
export function renderDecision(decision: GateDecision): string {
  const rule = decision.rule === undefined ? '' : `  rule: ${decision.rule}${decision.scope === undefined ? '' : ` (${decision.scope})`}\n`;
  return `${decision.decision.toUpperCase()}  (source: ${decision.source})\n${rule}  reason: ${decision.reason}`;
}

/** The results of the tests: section, failures first. */
export function renderTestResults(results: readonly PolicyTestResult[]): string {
  if (results.length === 0) return 'permissions.yaml has no tests: section; nothing to run';
  const lines = results.map((r) => `${r.pass ? 'pass' : 'FAIL'}  ${r.line === undefined ? '' : `line ${r.line}: `}${r.written} expects ${r.expect}, got ${r.got}${r.pass ? '' : ` (${r.reason})`}`);
  const failed = results.filter((r) => !r.pass).length;
  lines.push(`${results.length - failed} passed, ${failed} failed`);
  return lines.join('\n');
}
