/** The `rule_id` of a rule: sha256 of its text, hex. One definition for the gate, the audit log and the CLI. */
import { createHash } from 'node:crypto';

/** sha256 hex of a rule's text. */
export function ruleId(ruleText: string): string {
  return createHash('sha256').update(ruleText, 'utf8').digest('hex');
}
