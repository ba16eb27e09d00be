/**
 * The daemon's current policy: permissions.yaml and config.yaml as they are on disk now, plus
 * the session rules in memory. Files are re-read when their size or modification time changes
 * (one stat each per call), so a rule or mode changed with the CLI applies to the next call
 * without a restart. A file that has become unreadable or invalid fails every call closed
 * until it is fixed; the last good policy is never used in its place.
 */
import { statSync } from 'node:fs';
import { loadConfig, type CmdopConfig } from '../config/config-file.js';
import { configPath, permissionsPath } from '../config/cmdop-home.js';
import { loadPermissions } from '../config/permissions-file.js';
import { systemErrorCode } from '../errors.js';
import { compilePolicy, type Policy, type RuleLists } from '../gate/policy.js';
import { parseRule } from '../gate/rule-grammar.js';
import type { RuleEffect } from '../gate/types.js';

export interface PolicySnapshot {
  readonly policy: Policy;
  readonly config: CmdopConfig;
}

export interface PolicySource {
  /** The policy for the next call; rejects (CmdopError 'config') while a file is broken. */
  current(): Promise<PolicySnapshot>;
  /** Adds a session rule (kept until the daemon stops). */
  addSessionRule(effect: RuleEffect, rule: string): void;
  sessionRules(): RuleLists;
}

export function createPolicySource(home: string, userHome: string): PolicySource {
  const session: { allow: string[]; deny: string[]; ask: string[] } = { allow: [], deny: [], ask: [] };
  let stamp = '';
  let sessionVersion = 0;
  let compiledFor = -1;
  let cached: PolicySnapshot | undefined;
  let loading: Promise<PolicySnapshot> | undefined;

  const load = async (): Promise<PolicySnapshot> => {
    const now = `${fileStamp(permissionsPath(home))}|${fileStamp(configPath(home))}`;
    if (cached !== undefined && now === stamp && compiledFor === sessionVersion) return cached;
    const version = sessionVersion;
    const [doc, config] = await Promise.all([loadPermissions(home), loadConfig(home)]);
    const policy = compilePolicy({
      mode: doc.mode,
      enabled: config.permissions.enabled,
      rules: { allow: doc.allow, deny: doc.deny, ask: doc.ask },
      session: { allow: [...session.allow], deny: [...session.deny], ask: [...session.ask] },
      reasons: doc.reasons,
      home: userHome,
    });
    cached = { policy, config };
    stamp = now;
    compiledFor = version;
    return cached;
  };

  return {
    current() {
      // Calls arriving together share one reload.
      loading ??= load().finally(() => {
        loading = undefined;
      });
      return loading;
    },
    addSessionRule(effect, rule) {
      // A rule that does not parse would break every later call; it is refused here.
      parseRule(rule);
      if (!session[effect].includes(rule)) session[effect].push(rule);
      sessionVersion++;
    },
    sessionRules() {
      return { allow: [...session.allow], deny: [...session.deny], ask: [...session.ask] };
    },
  };
}

/**
 * Synchronous on purpose: a stat of a file the kernel has cached takes microseconds, while the
 * promise form queues behind every file read in flight on libuv's four threads.
 */
function fileStamp(file: string): string {
  try {
    const info = statSync(file);
    // An atomic replace gives a new inode; ctime catches an edit within the same mtime tick.
    return `${info.ino}:${info.size}:${info.mtimeMs}:${info.ctimeMs}`;
  } catch (error) {
    if (systemErrorCode(error) === 'ENOENT') return 'missing';
    throw error;
  }
}
