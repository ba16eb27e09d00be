/**
 * Approvals: the only key that opens a tool executor. The gate decides; `createApproval` turns
 * an allow into an approval bound to that one request, and the executor re-asks the gate about
 * what it actually opened, so a symlink swapped in between the check and the open is caught
 * (DESIGN.md §4.3, last rule of "Paths").
 */
import { absolutePath, normalizePath } from '../../floor/paths.js';
import { CmdopError } from '../errors.js';
import type { Gate } from '../gate/gate.js';
import type { Policy } from '../gate/policy.js';
import { TOOLS, type GateDecision, type GateRequest, type ToolName } from '../gate/types.js';

/** Permission to run one request, minted from an allow decision of the gate. */
export interface Approval {
  readonly request: GateRequest;
  /** The decision that allowed the request; always an allow. */
  readonly decision: GateDecision;
  /** The receiving user's home, against which `~` and relative targets were decided. */
  readonly home: string;
  /**
   * Re-asks the gate about the path a path tool actually opened (same tool, that real path as
   * target). Anything but an allow means the tool must refuse and write or return nothing.
   */
  recheckPath(realPath: string): GateDecision;
}

/** Approvals made by createApproval; a look-alike object built elsewhere opens nothing. */
const minted = new WeakSet<Approval>();

/**
 * Mints an approval for `request` from the gate's `decision` about it under `policy`.
 * Throws CmdopError('denied') unless the decision is an allow.
 */
export function createApproval(gate: Gate, policy: Policy, request: GateRequest, decision: GateDecision): Approval {
  if (decision.decision !== 'allow') {
    throw new CmdopError('denied', `${request.tool} was not allowed (${decision.decision}): ${decision.reason}`, {
      hint: decision.decision === 'ask' ? 'An ask must be answered by the operator before the tool can run.' : 'Change the rule or mode that decided, if this call should run.',
      details: { decision: decision.decision, source: decision.source },
    });
  }
  const frozenRequest: GateRequest = Object.freeze({ ...request });
  const home = policy.home;
  const cwd = cwdOf(request, home);
  // The path the caller (and, after an ask, the operator) saw, in the gate's written form.
  const approvedPath = TOOLS[request.tool].target === 'path' ? normalizePath(request.target, { home, cwd }) : undefined;

  function recheckPath(realPath: string): GateDecision {
    if (approvedPath === undefined) {
      throw new CmdopError('internal', `recheckPath applies to path tools only, not to ${request.tool}`);
    }
    // The local operator is not gated at all, the floor included (src/gate/caller.ts).
    if (decision.source === 'local') return decision;
    let now: GateDecision;
    try {
      now = gate.evaluate({ tool: request.tool, target: realPath }, policy);
    } catch (error) {
      // Fail closed: a path the gate cannot even take is not one a tool may open.
      const why = error instanceof Error ? error.message : String(error);
      return Object.freeze({ decision: 'deny', source: 'floor', reason: `the path opened ("${realPath}") could not be checked: ${why}` });
    }
    // This host calling itself answers to the floor only; its rules do not apply to it.
    if (decision.source === 'self') return now.source === 'floor' ? now : decision;
    // An ask about the very path that was approved was already answered, by the operator who
    // saw it; an ask about any other path was never shown to anyone.
    if (now.decision === 'ask' && realPath === approvedPath) return decision;
    return now;
  }

  const approval: Approval = Object.freeze({ request: frozenRequest, decision, home, recheckPath });
  minted.add(approval);
  return approval;
}

/**
 * Checks that `approval` was minted by createApproval for `tool` and for exactly `target`,
 * so an executor never runs something other than what the gate saw. Throws CmdopError('denied').
 */
export function requireApproval(approval: Approval, tool: ToolName, target: string): void {
  if (!minted.has(approval)) {
    throw new CmdopError('denied', `${tool} was called without an approval from the gate`);
  }
  if (approval.request.tool !== tool) {
    throw new CmdopError('denied', `the approval is for ${approval.request.tool}, not ${tool}`);
  }
  if (approval.request.target !== target) {
    throw new CmdopError('denied', `the approval is for ${describe(approval.request.target)}, not ${describe(target)}`, {
      hint: 'Run exactly the target the gate decided on.',
    });
  }
  if (approval.decision.decision !== 'allow') {
    throw new CmdopError('denied', `the approval's decision is ${approval.decision.decision}, not allow`);
  }
}

/**
 * The approved path target as the kernel should open it: absolute against the receiving home
 * and the request's cwd, with `..` kept so it is applied after any symlink, as the gate did.
 */
export function approvedAbsolutePath(approval: Approval): string {
  return absolutePath(approval.request.target, { home: approval.home, cwd: approvedCwd(approval) });
}

/** The working directory the gate decided the request for: its cwd, or the receiving home. */
export function approvedCwd(approval: Approval): string {
  return cwdOf(approval.request, approval.home);
}

// The gate's own reading of a request's cwd (src/gate/gate.ts, floorContext).
function cwdOf(request: GateRequest, home: string): string {
  return request.cwd === undefined ? home : normalizePath(request.cwd, { home });
}

/**
 * Refuses, with CmdopError('denied'), unless the gate allows the path actually opened. Called by
 * the path tools with the real path of their open file descriptor.
 */
export function assertOpenedPathAllowed(approval: Approval, realPath: string): void {
  const now = approval.recheckPath(realPath);
  if (now.decision === 'allow') return;
  throw new CmdopError('denied', `what was opened, "${realPath}", is not allowed (${now.decision}): ${now.reason}`, {
    hint: 'The path changed between the permission check and the open (a symlink, or a moved directory); nothing was read or written.',
    details: { decision: now.decision, source: now.source, path: realPath },
  });
}

function describe(target: string): string {
  return JSON.stringify(target.length > 120 ? `${target.slice(0, 117)}...` : target);
}
