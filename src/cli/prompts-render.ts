/**
 * The pieces of `cmdop permissions prompts` and `pending` that need no terminal: keeping the
 * list of waiting prompts from operator events, turning a key or a line into an answer, and
 * rendering prompts with a countdown. Everything a remote caller chose (its command, path,
 * names) is shown with control characters escaped, so it cannot move the cursor, rewrite the
 * screen or fake a line of this UI.
 */
import type { AnswerRequest, OperatorEvent, PendingPrompt } from '../transport/local-api.js';

/** What a key (or a line in line mode) asks for. */
export type PromptAction = { readonly kind: 'answer'; readonly answer: AnswerRequest } | { readonly kind: 'quit' } | { readonly kind: 'next' } | { readonly kind: 'previous' };

/** The answer keys, in the order the help line shows them. */
export const ANSWER_KEYS = {
  a: { decision: 'allow', scope: 'once', label: 'allow once' },
  s: { decision: 'allow', scope: 'session', label: 'allow for this session' },
  g: { decision: 'allow', scope: 'global', label: 'allow always (global rule for exactly this target)' },
  d: { decision: 'deny', scope: 'once', label: 'deny' },
} as const;

type AnswerKey = keyof typeof ANSWER_KEYS;

/** The help line under the current prompt. */
export const KEY_HELP = '[a] allow once  [s] allow this session  [g] allow always  [d] deny  [tab] next  [q] quit';

/** Applies one operator event to the list of waiting prompts (oldest first); returns a new list. */
export function applyOperatorEvent(prompts: readonly PendingPrompt[], event: OperatorEvent): PendingPrompt[] {
  switch (event.type) {
    case 'snapshot':
      return [...event.prompts];
    case 'prompt':
      return [...prompts.filter((p) => p.id !== event.prompt.id), event.prompt];
    case 'resolved':
      return prompts.filter((p) => p.id !== event.id);
    case 'answered':
    case 'error':
      return [...prompts];
  }
}

/**
 * Maps a key pressed in the terminal UI to an action on the prompt with id `current`
 * (undefined when nothing waits: answer keys then do nothing). Ctrl-C and Ctrl-D quit.
 */
export function actionForKey(key: string, current: string | undefined): PromptAction | undefined {
  if (key === 'q' || key === 'Q' || key === '\u0003' || key === '\u0004') return { kind: 'quit' };
  if (key === '\t' || key === 'j' || key === 'n' || key === '\u001b[B' || key === '\u001b[C') return { kind: 'next' };
  if (key === '\u001b[Z' || key === 'k' || key === 'p' || key === '\u001b[A' || key === '\u001b[D') return { kind: 'previous' };
  const lower = key.toLowerCase();
  if (current === undefined || !isAnswerKey(lower)) return undefined;
  const { decision, scope } = ANSWER_KEYS[lower];
  return { kind: 'answer', answer: { id: current, decision, scope } };
}

/** What a line typed in line mode (stdin not a terminal) means. */
export type LineAction = PromptAction | { readonly kind: 'none' } | { readonly kind: 'invalid'; readonly message: string };

/**
 * Parses a line of line mode: `a`, `s`, `g`, `d` or `q`, optionally followed by a prompt id (or
 * an unambiguous start of one); without an id the answer goes to the oldest waiting prompt.
 */
export function actionForLine(line: string, prompts: readonly PendingPrompt[]): LineAction {
  const words = line.trim().split(/\s+/).filter((w) => w !== '');
  const [word, idPart, ...rest] = words;
  if (word === undefined) return { kind: 'none' };
  const key = word.toLowerCase();
  if (key === 'q' || key === 'quit') return { kind: 'quit' };
  if (!isAnswerKey(key) || rest.length > 0) return { kind: 'invalid', message: `not an answer: ${sanitize(line.trim())}; type a, s, g or d (optionally followed by a prompt id), or q` };
  let id: string;
  if (idPart === undefined) {
    const oldest = prompts[0];
    if (oldest === undefined) return { kind: 'invalid', message: 'no prompt is waiting' };
    id = oldest.id;
  } else {
    const matches = prompts.filter((p) => p.id.startsWith(idPart));
    const [only] = matches;
    if (only === undefined) return { kind: 'invalid', message: `no waiting prompt has an id starting with ${sanitize(idPart)}` };
    if (matches.length > 1) return { kind: 'invalid', message: `${sanitize(idPart)} starts ${matches.length} prompt ids; give more of it` };
    id = only.id;
  }
  const { decision, scope } = ANSWER_KEYS[key];
  return { kind: 'answer', answer: { id, decision, scope } };
}

/** Seconds left until `expiresAt`, rounded up, never below 0. */
export function secondsLeft(expiresAt: string, now: Date): number {
  const ms = Date.parse(expiresAt) - now.getTime();
  return Number.isNaN(ms) || ms <= 0 ? 0 : Math.ceil(ms / 1000);
}

/** `expires in 42s`, or `expired` once the time is up. */
export function formatCountdown(expiresAt: string, now: Date): string {
  const left = secondsLeft(expiresAt, now);
  return left === 0 ? 'expired' : `expires in ${left}s`;
}

/** The call as `tool(target)` or `tool(operation:target)`, escaped for the terminal. */
export function formatCall(prompt: PendingPrompt): string {
  const op = prompt.operation === null ? '' : `${prompt.operation}:`;
  return `${sanitize(prompt.tool)}(${sanitize(op)}${sanitize(prompt.target)})`;
}

/** One waiting prompt as a block of lines: who, what, what asked and why, the countdown and id. */
export function renderPrompt(prompt: PendingPrompt, now: Date, position?: { readonly index: number; readonly total: number }): string[] {
  const where = position === undefined ? '' : `[${position.index + 1}/${position.total}] `;
  return [
    `${where}${callerLabel(prompt)} wants to run ${sanitize(prompt.tool)}`,
    `  target:   ${sanitize(prompt.target)}${prompt.operation === null ? '' : `   (operation ${sanitize(prompt.operation)})`}`,
    `  asked by: ${sanitize(prompt.asked_by)}`,
    `  reason:   ${sanitize(prompt.reason)}`,
    `  ${formatCountdown(prompt.expires_at, now)}   id ${sanitize(prompt.id)}`,
  ];
}

/** The whole terminal screen: the selected prompt in full, the others one line each, the keys. */
export function renderScreen(prompts: readonly PendingPrompt[], selected: string | undefined, now: Date, status: string): string {
  const lines: string[] = ['cmdop permissions prompts: answering as the operator of this host', ''];
  if (prompts.length === 0) {
    lines.push('No requests waiting. New ones appear here as they arrive.', '', '[q] quit');
  } else {
    const index = Math.max(0, prompts.findIndex((p) => p.id === selected));
    const current = prompts[index];
    if (current !== undefined) lines.push(...renderPrompt(current, now, { index, total: prompts.length }), '', KEY_HELP);
    const others = prompts.filter((p) => p !== current);
    if (others.length > 0) {
      lines.push('', 'also waiting:');
      for (const p of others) lines.push(`  ${p.caller_host === '-' ? sanitize(p.caller_principal) : sanitize(p.caller_host)}  ${formatCall(p)}  ${formatCountdown(p.expires_at, now)}`);
    }
  }
  if (status !== '') lines.push('', status);
  return lines.join('\n');
}

/** One plain line (or block) per event, for line mode. */
export function renderEventLines(event: OperatorEvent, now: Date): string[] {
  switch (event.type) {
    case 'snapshot':
      return [
        event.prompts.length === 0 ? 'connected as operator; no requests waiting' : `connected as operator; ${event.prompts.length} waiting`,
        ...event.prompts.flatMap((p) => renderPrompt(p, now)),
      ];
    case 'prompt':
      return [...renderPrompt(event.prompt, now), '  answer: a (allow once), s (session), g (always), d (deny) [ID]'];
    case 'resolved':
      return [`${sanitize(event.id)}: ${describeOutcome(event.outcome)}`];
    case 'answered':
      return [`${sanitize(event.id)}: answer taken${event.rule === undefined ? '' : `; rule ${sanitize(event.rule)}`}`];
    case 'error':
      return [`error${event.id === undefined ? '' : ` (${sanitize(event.id)})`}: ${sanitize(event.message)}`];
  }
}

/** What a status line says after an answer was taken. */
export function describeAnswer(answer: AnswerRequest, prompt: PendingPrompt | undefined, rule?: string): string {
  const call = prompt === undefined ? sanitize(answer.id) : formatCall(prompt);
  const key = (Object.keys(ANSWER_KEYS) as AnswerKey[]).find((k) => ANSWER_KEYS[k].decision === answer.decision && ANSWER_KEYS[k].scope === (answer.scope ?? 'once'));
  const label = key === undefined ? answer.decision : ANSWER_KEYS[key].label.replace(/ \(.*\)$/, '');
  return `${label}: ${call}${rule === undefined ? '' : `  (rule ${sanitize(rule)})`}`;
}

/** A prompt outcome in words. */
export function describeOutcome(outcome: 'ask_allowed' | 'ask_denied' | 'ask_timeout'): string {
  return outcome === 'ask_allowed' ? 'allowed' : outcome === 'ask_denied' ? 'denied' : 'timed out (denied)';
}

/** The waiting prompts as a table, for `cmdop permissions pending`. */
export function renderPendingTable(prompts: readonly PendingPrompt[], operators: number, now: Date): string {
  const footer = operators === 0 ? 'no operator connected: a new ask is denied at once (run `cmdop permissions prompts` to answer them)' : `${operators} operator${operators === 1 ? '' : 's'} connected`;
  if (prompts.length === 0) return `no requests waiting; ${footer}`;
  const header = ['ID', 'CALLER', 'CALL', 'ASKED BY', 'EXPIRES'];
  const rows = prompts.map((p) => [sanitize(p.id), callerLabel(p), formatCall(p), sanitize(p.asked_by), `${secondsLeft(p.expires_at, now)}s`]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ');
  return [line(header), ...rows.map(line), '', footer].join('\n');
}

/**
 * Escapes what a terminal would act on: C0 and C1 control characters, DEL, and the Unicode
 * bidirectional overrides that can make text read differently from what it is.
 */
export function sanitize(text: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => {
    if (c === '\n') return '\\n';
    if (c === '\r') return '\\r';
    if (c === '\t') return '\\t';
    return `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

function isAnswerKey(key: string): key is AnswerKey {
  return Object.hasOwn(ANSWER_KEYS, key);
}

/** `host (principal)`, or the principal alone for a caller that is not a host (key:, user:, guest:). */
function callerLabel(prompt: Pick<PendingPrompt, 'caller_host' | 'caller_principal'>): string {
  return prompt.caller_host === '-' ? sanitize(prompt.caller_principal) : `${sanitize(prompt.caller_host)} (${sanitize(prompt.caller_principal)})`;
}
