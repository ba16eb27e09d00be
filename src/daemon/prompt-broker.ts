/**
 * The prompt broker (DESIGN.md §4.1 step 4): holds the requests the gate turned into an ask,
 * pushes each to every attached operator, and settles it on the first answer, after the
 * timeout (`ask_timeout`), or as a deny when nobody can answer: no operator attached, the last
 * one left, the caller went away, or the daemon is shutting down. The broker never adds rules;
 * the daemon applies an answer's scope once {@link PromptBroker.ask} has resolved.
 */
import { randomBytes } from 'node:crypto';
import { CmdopError } from '../errors.js';
import type { AnswerReply, AnswerRequest, AnswerScope, OperatorEvent, PendingPrompt, PromptOutcome } from '../transport/local-api.js';

/** What the gate hands over for one ask: who calls, what, and what asked; the broker adds id and times. */
export type PromptInput = Omit<PendingPrompt, 'id' | 'created_at' | 'expires_at'>;

/**
 * Who settled a prompt: an `operator` answered (allow or deny); the `timeout` passed; or
 * `nobody` could answer: no operator was attached, the last one left, the caller went away,
 * the daemon shut down, or too many prompts were already waiting ({@link PromptResult.reason} says which).
 */
export type AnsweredBy = 'operator' | 'timeout' | 'nobody';

/** How an ask ended. `scope` (and `rule`, when the daemon supplies {@link PromptBrokerOptions.ruleFor}) only on an operator's allow. */
export interface PromptResult {
  readonly outcome: PromptOutcome;
  readonly answered_by: AnsweredBy;
  /** One sentence for the audit log and the caller's error message. */
  readonly reason: string;
  readonly scope?: AnswerScope;
  readonly rule?: string;
  /** Milliseconds from the ask to its settling, by the broker's clock. */
  readonly ask_ms: number;
  /** The prompt as operators saw it; absent when the ask was refused before becoming one. */
  readonly prompt?: PendingPrompt;
}

/** What {@link PromptBroker.answer} accepted. */
export interface AnswerResult {
  readonly prompt: PendingPrompt;
  readonly decision: 'allow' | 'deny';
  readonly scope: AnswerScope;
  /** The rule the daemon will add for a `session` or `global` allow, when it supplied `ruleFor`. */
  readonly rule?: string;
}

/** A listener for the operator channel's events. */
export type OperatorListener = (event: OperatorEvent) => void;

export interface PromptBrokerOptions {
  /** How long a prompt waits for an answer (default 60 s, DESIGN.md §4.1). */
  readonly timeoutMs?: number;
  /** The clock for `created_at`, `expires_at` and `ask_ms`. The timeout itself is a real timer. */
  readonly now?: () => Date;
  /** At most this many prompts wait at once; a further ask is denied at once (default 64). */
  readonly maxPending?: number;
  /** The rule a `session` or `global` allow of this prompt adds, so answers can name it. */
  readonly ruleFor?: (prompt: PendingPrompt) => string;
}

/** The broker's interface, as the daemon and the operator channel use it. */
export interface PromptBroker {
  /**
   * Shows the request to the operators and waits for the outcome. Never rejects: every way an
   * ask can end is a {@link PromptResult}. Aborting `signal` withdraws the prompt (ask_denied).
   */
  ask(input: PromptInput, signal?: AbortSignal): Promise<PromptResult>;
  /** The prompts waiting now, oldest first. */
  pending(): PendingPrompt[];
  /**
   * Settles a waiting prompt. Throws CmdopError('not_found') for an unknown or already settled
   * id, CmdopError('invalid_input') for a decision or scope that is not one of the allowed values.
   */
  answer(request: AnswerRequest): AnswerResult;
  /** Attaches an operator: it gets a snapshot at once, then every event. Returns the detach function. */
  attach(listener: OperatorListener): () => void;
  /** How many operators are attached. */
  operators(): number;
  /** Denies everything waiting, detaches every operator, and denies every later ask at once. */
  close(): void;
}

const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_PENDING = 64;
const SCOPES: readonly AnswerScope[] = ['once', 'session', 'global'];

interface Waiting {
  readonly prompt: PendingPrompt;
  readonly started: number;
  settle(result: Omit<PromptResult, 'ask_ms' | 'prompt'>): void;
}

/** Makes a prompt broker; the daemon owns one for its lifetime. */
export function createPromptBroker(options: PromptBrokerOptions = {}): PromptBroker {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const now = options.now ?? (() => new Date());
  const maxPending = options.maxPending ?? DEFAULT_MAX_PENDING;
  const ruleFor = options.ruleFor;
  const waiting = new Map<string, Waiting>();
  const listeners = new Set<OperatorListener>();
  let closed = false;

  function emit(event: OperatorEvent): void {
    for (const listener of [...listeners]) deliver(listener, event);
  }

  function deliver(listener: OperatorListener, event: OperatorEvent): void {
    try {
      listener(event);
    } catch {
      // One broken operator connection must not keep the others, or the caller, from their answer.
    }
  }

  function settleAll(answeredBy: AnsweredBy, reason: string): void {
    for (const entry of [...waiting.values()]) entry.settle({ outcome: 'ask_denied', answered_by: answeredBy, reason });
  }

  function ask(input: PromptInput, signal?: AbortSignal): Promise<PromptResult> {
    const started = now().getTime();
    const refuse = (answeredBy: AnsweredBy, reason: string): Promise<PromptResult> =>
      Promise.resolve(Object.freeze({ outcome: 'ask_denied', answered_by: answeredBy, reason, ask_ms: 0 }));
    if (closed) return refuse('nobody', 'the daemon is shutting down');
    if (signal?.aborted === true) return refuse('nobody', 'the caller went away before the operator was asked');
    if (listeners.size === 0) return refuse('nobody', 'no operator connected to answer the prompt');
    if (waiting.size >= maxPending) return refuse('nobody', `${maxPending} prompts are already waiting for the operator`);

    const prompt: PendingPrompt = Object.freeze({
      id: randomBytes(16).toString('hex'),
      caller_host: input.caller_host,
      caller_principal: input.caller_principal,
      tool: input.tool,
      operation: input.operation,
      target: input.target,
      asked_by: input.asked_by,
      reason: input.reason,
      created_at: new Date(started).toISOString(),
      expires_at: new Date(started + timeoutMs).toISOString(),
    });

    return new Promise<PromptResult>((resolve) => {
      const timer = setTimeout(() => {
        entry.settle({ outcome: 'ask_timeout', answered_by: 'timeout', reason: `no answer from the operator in ${formatSeconds(timeoutMs)}` });
      }, timeoutMs);
      const onAbort = (): void => {
        entry.settle({ outcome: 'ask_denied', answered_by: 'nobody', reason: 'the caller went away before the operator answered' });
      };
      const entry: Waiting = {
        prompt,
        started,
        settle(result) {
          // Only the first way out counts; the map entry is the guard.
          if (waiting.get(prompt.id) !== entry) return;
          waiting.delete(prompt.id);
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          const askMs = Math.max(0, now().getTime() - started);
          emit({ type: 'resolved', id: prompt.id, outcome: result.outcome });
          resolve(Object.freeze({ ...result, ask_ms: askMs, prompt }));
        },
      };
      waiting.set(prompt.id, entry);
      signal?.addEventListener('abort', onAbort, { once: true });
      emit({ type: 'prompt', prompt });
    });
  }

  function answer(request: AnswerRequest): AnswerResult {
    // The request may come straight from a socket; check every field, whatever its static type says.
    const raw = request as { readonly id?: unknown; readonly decision?: unknown; readonly scope?: unknown };
    if (typeof raw.id !== 'string' || raw.id === '') throw new CmdopError('invalid_input', 'the answer has no prompt id', { hint: 'List the waiting prompts with `cmdop permissions pending`.' });
    if (raw.decision !== 'allow' && raw.decision !== 'deny') {
      throw new CmdopError('invalid_input', `the decision must be allow or deny, not ${describe(raw.decision)}`, { details: { id: raw.id } });
    }
    if (raw.scope !== undefined && !SCOPES.includes(raw.scope as AnswerScope)) {
      throw new CmdopError('invalid_input', `the scope must be once, session or global, not ${describe(raw.scope)}`, { details: { id: raw.id } });
    }
    const decision = raw.decision;
    const scope = (raw.scope ?? 'once') as AnswerScope;
    if (decision === 'deny' && scope !== 'once') {
      throw new CmdopError('invalid_input', `a deny answers this one request only; scope ${scope} applies to allow`, {
        hint: 'To deny such calls from now on, add a rule: cmdop permissions deny RULE',
        details: { id: raw.id },
      });
    }
    const entry = waiting.get(raw.id);
    if (entry === undefined) {
      throw new CmdopError('not_found', `no prompt ${raw.id} is waiting; it was answered, expired or withdrawn, or never existed`, {
        hint: 'List the waiting prompts with `cmdop permissions pending`.',
        details: { id: raw.id },
      });
    }
    const { prompt } = entry;
    const rule = decision === 'allow' && scope !== 'once' && ruleFor !== undefined ? ruleFor(prompt) : undefined;
    const how = decision === 'deny' ? 'denied by the operator' : scope === 'once' ? 'allowed once by the operator' : scope === 'session' ? 'allowed by the operator for this session' : 'allowed always by the operator (global rule)';
    entry.settle({
      outcome: decision === 'allow' ? 'ask_allowed' : 'ask_denied',
      answered_by: 'operator',
      reason: how,
      ...(decision === 'allow' ? { scope } : {}),
      ...(rule === undefined ? {} : { rule }),
    });
    return Object.freeze({ prompt, decision, scope, ...(rule === undefined ? {} : { rule }) });
  }

  function attach(listener: OperatorListener): () => void {
    if (closed) {
      deliver(listener, { type: 'error', message: 'the daemon is shutting down' });
      return () => undefined;
    }
    // Wrapping makes each attach its own entry, even for the same function attached twice.
    const own: OperatorListener = (event) => {
      listener(event);
    };
    listeners.add(own);
    deliver(own, { type: 'snapshot', prompts: pending() });
    let attached = true;
    return () => {
      if (!attached) return;
      attached = false;
      listeners.delete(own);
      // Nobody is left to answer; waiting out the timeout would only hold the callers up.
      if (listeners.size === 0) settleAll('nobody', 'the last operator disconnected before answering');
    };
  }

  function pending(): PendingPrompt[] {
    // A Map iterates in insertion order: oldest first.
    return [...waiting.values()].map((entry) => entry.prompt);
  }

  function close(): void {
    if (closed) return;
    closed = true;
    settleAll('nobody', 'the daemon is shutting down');
    listeners.clear();
  }

  return { ask, pending, answer, attach, operators: () => listeners.size, close };
}

/** True when a person answered the prompt, as opposed to a deny because nobody could or did in time. */
export function answeredByOperator(result: PromptResult): boolean {
  return result.answered_by === 'operator';
}

/** The reply of POST /v1/prompts/answer for an answer the broker took. */
export function toAnswerReply(result: AnswerResult): AnswerReply {
  return { id: result.prompt.id, decision: result.decision, scope: result.scope, ...(result.rule === undefined ? {} : { rule: result.rule }) };
}

function formatSeconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
