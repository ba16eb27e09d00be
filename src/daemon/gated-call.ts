/**
 * One tool call through the receiving host's gate (DESIGN.md §2, steps 2–5): decide for the
 * authenticated caller, ask the operator when the gate says ask, write the decision line to
 * the audit log (the call fails closed if it cannot be written), run the tool with an approval
 * minted from the allow, then write the outcome line.
 */
import { randomUUID } from 'node:crypto';
import { createAuditRecord, createOutcomeRecord, type AuditDecision, type AuditOutcome } from '../audit/audit-record.js';
import type { AuditSink } from '../audit/audit-sink.js';
import { addRule, updatePermissions } from '../config/permissions-file.js';
import { CmdopError } from '../errors.js';
import { decideForCaller, type Caller, type SelfIdentity } from '../gate/caller.js';
import type { Gate } from '../gate/gate.js';
import { exactRule, parseRule } from '../gate/rule-grammar.js';
import type { GateDecision, GateRequest, ToolName } from '../gate/types.js';
import { createApproval, type Approval } from '../tools/approval.js';
import type { AgentLog } from './agent-log.js';
import type { PolicySource } from './policy-source.js';
import type { WireGateDecision } from '../transport/local-api.js';
import type { PromptBrokerLike } from './prompt-port.js';

export interface GateDeps {
  readonly home: string;
  readonly gate: Gate;
  readonly policies: PolicySource;
  readonly audit: () => AuditSink;
  readonly prompts: PromptBrokerLike;
  readonly self: SelfIdentity;
  readonly log: AgentLog;
  readonly counters: { served: number };
}

/** The longest target shown to the operator at a prompt; a longer one is denied instead of asked. */
export const MAX_PROMPT_TARGET = 4096;

/** What the tool reports for its outcome line. */
export type Outcome<R> = (result: R) => AuditOutcome;

/** The result of a call that ran, with the decision that let it. */
export interface GatedResult<R> {
  readonly decision: GateDecision;
  readonly result: R;
}

/**
 * Gates and runs one call. Rejects with CmdopError('denied', details.decision) when the gate or
 * the operator refused, and with CmdopError('internal') when the audit line could not be written;
 * in both cases the tool did not run.
 */
export async function gatedCall<R>(
  deps: GateDeps,
  caller: Caller,
  request: GateRequest,
  input: unknown,
  signal: AbortSignal,
  run: (approval: Approval) => Promise<R>,
  outcomeOf: Outcome<R>,
): Promise<GatedResult<R>> {
  deps.counters.served++;
  let { policy, config } = await currentPolicy(deps);
  const decide = (): GateDecision => {
    try {
      return decideForCaller(deps.gate, policy, { self: deps.self, selfBypass: config.permissions.self_bypass }, caller, request);
    } catch (error) {
      // Bad input (an empty target, an unknown operation) is the caller's; anything else fails closed.
      if (error instanceof CmdopError && error.code === 'invalid_input') throw error;
      deps.log.error('the gate failed; the call is denied', { error });
      return { decision: 'deny', source: 'floor', reason: 'internal_error: the gate could not decide' };
    }
  };
  const decision = decide();
  const who = callerNames(caller);
  let auditDecision: AuditDecision = decision.decision === 'allow' ? 'allow' : 'deny';
  let askMs = 0;
  let final = decision;
  if (decision.decision === 'ask' && request.target.length > MAX_PROMPT_TARGET) {
    // Nobody can review a line this long at a prompt, and it would not fit one.
    auditDecision = 'ask_denied';
    final = { ...decision, decision: 'deny', reason: `${decision.reason}; the target is too long (${request.target.length} characters) to show the operator; a rule can allow it` };
  } else if (decision.decision === 'ask') {
    const asked = await deps.prompts.ask(
      {
        caller_host: who.hostname,
        caller_principal: who.user,
        tool: request.tool,
        operation: request.operation ?? null,
        target: request.target,
        asked_by: decision.rule ?? `mode ${policy.mode}`,
        reason: decision.reason,
      },
      signal,
    );
    askMs = asked.ask_ms;
    auditDecision = asked.outcome;
    if (asked.outcome === 'ask_allowed') {
      // The rules may have changed while the operator looked: a deny made meanwhile still wins.
      ({ policy, config } = await currentPolicy(deps));
      const now = decide();
      if (now.decision === 'deny') {
        auditDecision = 'ask_denied';
        final = { ...now, reason: `${now.reason}; denied by a rule or mode changed while the operator was asked` };
      } else {
        final = { ...decision, decision: 'allow', reason: `${decision.reason}; allowed by the operator${asked.scope === undefined || asked.scope === 'once' ? '' : ` (${asked.scope})`}` };
        await rememberAnswer(deps, request.tool, request.target, asked.scope ?? 'once', request.operation);
      }
    } else {
      final = { ...decision, decision: 'deny', reason: `${decision.reason}; ${asked.reason}` };
    }
  }
  const record = createAuditRecord({
    call_id: randomUUID(),
    decision: auditDecision,
    tool: request.tool,
    operation: request.operation ?? null,
    target: request.target,
    mode: policy.mode,
    source: final.source,
    rule: final.rule ?? null,
    reason: final.reason,
    ask_ms: askMs,
    hostname: who.hostname,
    user: who.user,
    address: who.address,
    input,
  });
  try {
    await deps.audit().append(record);
  } catch (error) {
    deps.log.error('the audit log cannot be written; the call is refused', { error });
    throw new CmdopError('internal', 'the receiving host cannot write its audit log, so nothing ran', {
      hint: 'The operator of that host must make its audit log writable again (disk full? permissions?); calls run again within seconds of that.',
      details: { stage: 'audit' },
    });
  }
  if (final.decision !== 'allow') {
    throw new CmdopError('denied', final.reason, {
      hint: hintFor(final),
      details: { decision: wireDecision(final), audit: auditDecision },
    });
  }
  const approval = createApproval(deps.gate, policy, request, final);
  const started = Date.now();
  let result: R;
  try {
    result = await run(approval);
  } catch (error) {
    const failure = CmdopError.from(error);
    await appendOutcome(deps, record, { status: signal.aborted ? 'interrupted' : 'error', duration_ms: Date.now() - started, error: failure.message });
    throw failure;
  }
  await appendOutcome(deps, record, { ...outcomeOf(result), duration_ms: Date.now() - started });
  return { decision: final, result };
}

/**
 * The policy for this call. A broken permissions.yaml or config.yaml refuses the call; what is
 * wrong with it goes to this host's log, not to the caller (the file may hold secrets).
 */
async function currentPolicy(deps: GateDeps): Promise<Awaited<ReturnType<PolicySource['current']>>> {
  try {
    return await deps.policies.current();
  } catch (error) {
    deps.log.error('the policy cannot be loaded; every call is refused until it is fixed', { error: CmdopError.from(error).message });
    throw new CmdopError('config', "the receiving host's permission files are broken, so nothing runs there until its operator fixes them", {
      hint: "Its operator sees what is wrong with `cmdop permissions list` on that host.",
      details: { stage: 'policy' },
    });
  }
}

async function appendOutcome(deps: GateDeps, record: Parameters<typeof createOutcomeRecord>[0], outcome: AuditOutcome): Promise<void> {
  try {
    await deps.audit().append(createOutcomeRecord(record, outcome));
  } catch (error) {
    // The tool already ran; its decision line is on disk. Later calls fail closed on the same sink.
    deps.log.error('the outcome line could not be written', { error, call_id: record.call_id });
  }
}

/** "Allow for this session" and "allow always" add a rule for exactly this target, never a wider glob. */
async function rememberAnswer(deps: GateDeps, tool: ToolName, target: string, scope: 'once' | 'session' | 'global', operation: string | undefined): Promise<void> {
  if (scope === 'once') return;
  const rule = exactRule(tool, target, operation);
  try {
    // Some targets cannot be written as a rule (too long, control characters, edge blanks).
    parseRule(rule);
  } catch {
    deps.log.warn('the answer applies to this call only: its target cannot be written as a rule', { tool });
    return;
  }
  if (scope === 'session') {
    deps.policies.addSessionRule('allow', rule);
    return;
  }
  try {
    await updatePermissions(deps.home, (doc) => addRule(doc, 'allow', rule, { reason: 'allowed always at a prompt', now: new Date() }).doc);
  } catch (error) {
    // The call itself was allowed by the operator; only the remembering failed.
    deps.log.error('could not add the rule the operator chose; this call runs, the next one asks again', { error, rule });
  }
}

export function callerNames(caller: Caller): { hostname: string; user: string; address?: string } {
  if (caller.kind === 'local') return { hostname: 'local', user: 'local-operator' };
  // A caller with a bearer credential (key:, user:, guest:) has no authenticated host; where it called from is noted.
  if (caller.host === '') return { hostname: '-', user: caller.principal, ...(caller.address === undefined ? {} : { address: caller.address }) };
  return { hostname: caller.host, user: caller.principal };
}

export function wireDecision(d: GateDecision): WireGateDecision {
  return {
    decision: d.decision,
    source: d.source,
    reason: d.reason,
    ...(d.rule === undefined ? {} : { rule: d.rule }),
    ...(d.rule_id === undefined ? {} : { rule_id: d.rule_id }),
    ...(d.scope === undefined ? {} : { scope: d.scope }),
  };
}

function hintFor(d: GateDecision): string {
  if (d.source === 'floor') return 'The floor is hard-coded; no rule or mode can allow this.';
  if (d.source === 'rule') return `The receiving host's rule ${JSON.stringify(d.rule ?? '')} decided; its operator can change it.`;
  return "Ask the receiving host's operator to allow it (cmdop permissions allow ...), or to answer the prompt.";
}
