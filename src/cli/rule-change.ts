/**
 * The one way the CLI changes rules or the mode: under the permissions.yaml lock, with the
 * `tests:` section run against the result before anything is written.
 */
import { loadConfig } from '../config/config-file.js';
import { addRule, revokeRule, setMode, updatePermissions, type PermissionsDoc } from '../config/permissions-file.js';
import type { Mode, RuleEffect } from '../gate/types.js';
import { openHostContext, refuseBrokenTests } from './host-context.js';
import { requireUnlocked } from '../identity/machine-password.js';

export interface RuleChangeResult {
  readonly action: 'add' | 'revoke' | 'mode';
  readonly status: string;
  readonly rule?: string;
  readonly effect?: RuleEffect;
  readonly removed_from?: readonly RuleEffect[];
  readonly mode?: Mode;
  readonly previous_mode?: Mode;
  readonly file: string;
}

async function change(mutate: (doc: PermissionsDoc) => PermissionsDoc): Promise<string> {
  const context = await openHostContext();
  // With a machine password set, only an unlocked CLI may change the rules.
  await requireUnlocked(context.cmdopHome);
  const config = await loadConfig(context.cmdopHome);
  await updatePermissions(context.cmdopHome, mutate, { validate: refuseBrokenTests(context, config) });
  return `${context.cmdopHome}/permissions.yaml`;
}

/** Adds a global rule. */
export async function addGlobalRule(effect: RuleEffect, rule: string, reason: string | undefined): Promise<RuleChangeResult> {
  let status = '';
  let stored = rule;
  const file = await change((doc) => {
    const result = addRule(doc, effect, rule, { reason, now: new Date() });
    status = result.status;
    stored = result.rule;
    return result.doc;
  });
  return { action: 'add', status, rule: stored, effect, file };
}

/** Removes a global rule from whichever list holds it. */
export async function revokeGlobalRule(rule: string): Promise<RuleChangeResult> {
  let removed: readonly RuleEffect[] = [];
  let stored = rule;
  const file = await change((doc) => {
    const result = revokeRule(doc, rule);
    removed = result.removedFrom;
    stored = result.rule;
    return result.doc;
  });
  return { action: 'revoke', status: 'revoked', rule: stored, removed_from: removed, file };
}

/** Sets the mode. */
export async function changeMode(mode: string): Promise<RuleChangeResult> {
  const seen: { result?: ReturnType<typeof setMode> } = {};
  const file = await change((doc) => {
    seen.result = setMode(doc, mode);
    return seen.result.doc;
  });
  const result = seen.result;
  if (result === undefined) throw new Error('the mode change did not run');
  return { action: 'mode', status: result.changed ? 'changed' : 'unchanged', mode: result.mode, previous_mode: result.previous, file };
}
