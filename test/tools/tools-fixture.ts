/**
 * A real gate over a temporary home for the tool tests: approvals are minted from the gate's
 * own decisions, as the daemon will mint them.
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGate, type Gate } from '../../src/gate/gate.js';
import { compilePolicy, type Policy, type RuleLists } from '../../src/gate/policy.js';
import type { GateRequest, Mode } from '../../src/gate/types.js';
import { createFsPathResolver } from '../../src/platform/fs-path-resolver.js';
import { createApproval, type Approval } from '../../src/tools/approval.js';

export interface ToolsFixture {
  /** Real path of the temporary root; everything the tests make lives under it. */
  readonly root: string;
  readonly home: string;
  readonly gate: Gate;
  /** Mode bypass, no rules: everything but the floor is allowed. */
  readonly bypass: Policy;
  policy(mode: Mode, rules?: Partial<RuleLists>): Policy;
  /** Asks the gate and mints an approval from its decision (throws unless it allows). */
  approve(request: GateRequest, policy?: Policy): Approval;
  cleanup(): void;
}

export async function createToolsFixture(prefix: string): Promise<ToolsFixture> {
  // realpath: /tmp may itself be a link on some systems, and rechecks compare real paths.
  const root = realpathSync(mkdtempSync(join(tmpdir(), `cmdop-${prefix}-`)));
  const home = join(root, 'home');
  mkdirSync(home);
  const gate = await createGate({ home, cmdopHome: join(root, 'cmdop-home'), resolver: createFsPathResolver() });
  const policy = (mode: Mode, rules: Partial<RuleLists> = {}): Policy =>
    compilePolicy({ mode, enabled: true, rules: { allow: rules.allow ?? [], deny: rules.deny ?? [], ask: rules.ask ?? [] }, home });
  const bypass = policy('bypass');
  return {
    root,
    home,
    gate,
    bypass,
    policy,
    approve: (request, chosen = bypass) => createApproval(gate, chosen, request, gate.evaluate(request, chosen)),
    cleanup: () => {
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * True while `pid` is a live process. A zombie counts as dead: it has exited, and in a
 * container whose init does not reap, it stays a zombie for good.
 */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** Waits up to `ms` for `pid` to die; true when it did. */
export async function waitUntilDead(pid: number, ms = 3_000): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return !isAlive(pid);
}
