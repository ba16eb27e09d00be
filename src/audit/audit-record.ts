/**
 * The audit record (DESIGN.md §5.1): one JSON object per line, written before a tool runs
 * (`event: 'decision'`) and after it ran (`event: 'outcome'`), correlated by `call_id`.
 * Secrets are redacted from every free-text field before a record exists; file contents and
 * the full input never go in, only the input's digest.
 */

import { ruleId } from '../shared/rule-id.js';
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import { CmdopError } from '../errors.js';

/** What the gate decided for one call. */
export type AuditDecision = 'allow' | 'deny' | 'ask_allowed' | 'ask_denied' | 'ask_timeout';

/** Which kind of line this is: the decision before the tool runs, or its outcome after. */
export type AuditEvent = 'decision' | 'outcome';

/** The gate's mode when it decided. */
export type AuditMode = 'default' | 'strict' | 'bypass';

/** Which step of the gate produced the decision. */
export type AuditSource = 'floor' | 'rule' | 'mode' | 'self' | 'local' | 'identity';

/** How a tool run ended. */
export type AuditOutcomeStatus = 'ok' | 'failed' | 'error' | 'interrupted';

/** Every decision value, in the order DESIGN.md §5.1 lists them. */
export const AUDIT_DECISIONS: readonly AuditDecision[] = ['allow', 'deny', 'ask_allowed', 'ask_denied', 'ask_timeout'];

/** Every event value. */
export const AUDIT_EVENTS: readonly AuditEvent[] = ['decision', 'outcome'];

/** The outcome of a tool run, as recorded on its outcome line. */
export interface AuditOutcome {
  readonly status: AuditOutcomeStatus;
  readonly exit_code?: number | undefined;
  readonly duration_ms?: number | undefined;
  readonly truncated?: boolean | undefined;
  /** A redacted error message; never output or file contents. */
  readonly error?: string | undefined;
}

interface AuditRecordBase {
  /** When the line was made, ISO 8601 in UTC. */
  readonly ts: string;
  readonly call_id: string;
  readonly decision: AuditDecision;
  readonly tool: string;
  readonly operation: string | null;
  /** The call's target (command, path or host name), redacted. */
  readonly target: string;
  readonly mode: AuditMode;
  readonly source: AuditSource;
  /** The matched rule's text, redacted; null when no rule matched. */
  readonly rule: string | null;
  /** sha256 hex of the unredacted rule text, so the line matches `permissions.yaml`. */
  readonly rule_id: string | null;
  readonly reason: string;
  /** `sha256:` + hex over the canonical JSON of the full, unredacted input. */
  readonly input_digest: string;
  /** Milliseconds spent waiting for the operator; 0 when nobody was asked. */
  readonly ask_ms: number;
  /** The caller's authenticated host. */
  readonly hostname: string;
  /** The caller's principal. */
  readonly user: string;
  /**
   * Where a caller without a host certificate (key:, user:, guest:) called from, as the
   * network reported it; absent for hosts and the local operator. Not evidence of identity.
   */
  readonly address?: string | undefined;
}

/** The line written before a tool runs. */
export interface AuditDecisionRecord extends AuditRecordBase {
  readonly event: 'decision';
}

/** The line written after a tool ran (or failed to). */
export interface AuditOutcomeRecord extends AuditRecordBase {
  readonly event: 'outcome';
  readonly outcome: AuditOutcome;
}

/** One audit line. */
export type AuditRecord = AuditDecisionRecord | AuditOutcomeRecord;

const sha256Hex = /^[0-9a-f]{64}$/;

const baseShape = {
  ts: z.string().datetime({ offset: true }),
  call_id: z.string().min(1),
  decision: z.enum(['allow', 'deny', 'ask_allowed', 'ask_denied', 'ask_timeout']),
  tool: z.string().min(1),
  operation: z.string().nullable(),
  target: z.string(),
  mode: z.enum(['default', 'strict', 'bypass']),
  source: z.enum(['floor', 'rule', 'mode', 'self', 'local', 'identity']),
  rule: z.string().nullable(),
  rule_id: z.string().regex(sha256Hex).nullable(),
  reason: z.string(),
  input_digest: z.string().regex(/^sha256:[0-9a-f]{64}$/),
  ask_ms: z.number().finite().nonnegative(),
  hostname: z.string(),
  user: z.string(),
  address: z.string().optional(),
};

const outcomeSchema = z.object({
  status: z.enum(['ok', 'failed', 'error', 'interrupted']),
  exit_code: z.number().int().optional(),
  duration_ms: z.number().finite().nonnegative().optional(),
  truncated: z.boolean().optional(),
  error: z.string().optional(),
});

/** Validates one line read back from the audit log; typed so it must produce exactly AuditRecord. */
export const auditRecordSchema: z.ZodType<AuditRecord, z.ZodTypeDef, unknown> = z.discriminatedUnion('event', [
  z.object({ ...baseShape, event: z.literal('decision') }),
  z.object({ ...baseShape, event: z.literal('outcome'), outcome: outcomeSchema }),
]);

/** What a caller knows when the gate has decided; `createAuditRecord` fills in the rest. */
export interface AuditDecisionInit {
  /** Correlates the decision line with its outcome line; a random UUID when absent. */
  readonly call_id?: string;
  readonly decision: AuditDecision;
  readonly tool: string;
  readonly operation?: string | null;
  /** Unredacted; redacted here. */
  readonly target: string;
  readonly mode: AuditMode;
  readonly source: AuditSource;
  /** Unredacted rule text; its sha256 becomes `rule_id`, its redacted form `rule`. */
  readonly rule?: string | null;
  readonly reason: string;
  readonly ask_ms?: number;
  readonly hostname: string;
  readonly user: string;
  /** Where a bearer caller called from (see AuditRecordBase.address). */
  readonly address?: string | undefined;
  /** The full tool input (file contents included); only its digest is kept. */
  readonly input: unknown;
  /** The clock, handed in; the current time when absent. */
  readonly now?: Date;
}

/** Builds a redacted decision record: fills `ts`, `call_id`, `rule_id` and `input_digest`. */
export function createAuditRecord(init: AuditDecisionInit): AuditDecisionRecord {
  const askMs = init.ask_ms ?? 0;
  if (!Number.isFinite(askMs) || askMs < 0) {
    throw new CmdopError('internal', `Cannot build an audit record: ask_ms must be a non-negative number, got ${String(askMs)}.`);
  }
  const rule = init.rule ?? null;
  return {
    ts: (init.now ?? new Date()).toISOString(),
    event: 'decision',
    call_id: init.call_id ?? randomUUID(),
    decision: init.decision,
    tool: init.tool,
    operation: init.operation ?? null,
    target: recordText(init.target),
    mode: init.mode,
    source: init.source,
    rule: rule === null ? null : recordText(rule),
    rule_id: rule === null ? null : ruleId(rule),
    reason: recordText(init.reason),
    input_digest: digestInput(init.input),
    ask_ms: askMs,
    hostname: init.hostname,
    user: init.user,
    ...(init.address === undefined ? {} : { address: recordText(init.address) }),
  };
}

/** Builds the outcome line for a decision line: same call, new `ts`, redacted error text. */
export function createOutcomeRecord(decision: AuditDecisionRecord, outcome: AuditOutcome, now: Date = new Date()): AuditOutcomeRecord {
  const cleaned: AuditOutcome = {
    status: outcome.status,
    ...(outcome.exit_code === undefined ? {} : { exit_code: outcome.exit_code }),
    ...(outcome.duration_ms === undefined ? {} : { duration_ms: outcome.duration_ms }),
    ...(outcome.truncated === undefined ? {} : { truncated: outcome.truncated }),
    ...(outcome.error === undefined ? {} : { error: recordText(outcome.error) }),
  };
  return { ...decision, ts: now.toISOString(), event: 'outcome', outcome: cleaned };
}

/** sha256 hex of a rule's text, the `rule_id` that ties an audit line to its rule. */
export { ruleId } from '../shared/rule-id.js';

/** `sha256:` + hex over the canonical JSON (object keys sorted) of a tool's full input. */
export function digestInput(input: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(input) ?? 'null', 'utf8').digest('hex')}`;
}

/**
 * JSON with object keys sorted at every level, so equal inputs always hash alike. Byte
 * arrays become `"base64:…"` strings; values JSON cannot hold are dropped as JSON drops them.
 */
function canonicalJson(value: unknown): string | undefined {
  if (ArrayBuffer.isView(value)) {
    return JSON.stringify(`base64:${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}`);
  }
  if (value instanceof ArrayBuffer) return JSON.stringify(`base64:${Buffer.from(value).toString('base64')}`);
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  if (value !== null && typeof value === 'object') {
    const withToJson = value as { toJSON?: unknown };
    if (typeof withToJson.toJSON === 'function') return canonicalJson((withToJson.toJSON as () => unknown).call(value));
    if (Array.isArray(value)) {
      return `[${value.map((item: unknown) => canonicalJson(item) ?? 'null').join(',')}]`;
    }
    const entries: string[] = [];
    for (const key of Object.keys(value).sort()) {
      const encoded = canonicalJson((value as Record<string, unknown>)[key]);
      if (encoded !== undefined) entries.push(`${JSON.stringify(key)}:${encoded}`);
    }
    return `{${entries.join(',')}}`;
  }
  const encoded: string | undefined = JSON.stringify(value);
  return encoded;
}

const REDACTED = '[REDACTED]';

// Building blocks of a shell-ish value. A quote in the middle of a value continues it only when
// a non-blank follows (`pa"ss word"`); a quote followed by a blank or the end is taken as the
// closing quote of an enclosing string (`sh -c "tool --token abc"`). An unterminated quote
// runs to the end of the text, so a malformed line is over-redacted rather than leaked.
const DQ = String.raw`"(?:[^"\\]|\\.)*(?:"|$)`;
const SQ = String.raw`'[^']*(?:'|$)`;
const PLAIN = String.raw`[^\s'"&;|<>()]`;
const VALUE = String.raw`(?!\[REDACTED\])(?:${DQ}|${SQ}|${PLAIN})(?:${PLAIN}|"(?=\S)${DQ.slice(1)}|'(?=\S)${SQ.slice(1)})*`;
// The content of a string quoted by the quote captured in group 1.
const QUOTED_REST = String.raw`(?:(?!\1)[^\\]|\\.)*\1`;

// A name (of a flag, variable or query parameter) that marks the next value as a secret: one
// that contains a secret word. The lookahead finds the word and the greedy run takes the
// whole name, and every pattern may start only where a name starts, so matching stays linear
// in the length of the text, whatever a caller sends.
const SECRET_WORD = String.raw`(?:password|passwd|passphrase|secret|token|bearer|credential|api[_-]?key|apikey|[_-]key)`;
const SECRET_NAME = String.raw`(?<![A-Za-z0-9_.-])(?=[A-Za-z0-9_.-]*?${SECRET_WORD})[A-Za-z0-9][A-Za-z0-9_.-]*`;
const FLAG = String.raw`(?<![^\s'"])-{1,2}(?!-)${SECRET_NAME.replace('(?<![A-Za-z0-9_.-])', '')}`;

interface Redaction {
  readonly pattern: RegExp;
  readonly replace: string;
}

const REDACTIONS: readonly Redaction[] = [
  // PEM private keys, whole block (or to the end when the block is cut off).
  { pattern: /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)/g, replace: REDACTED },
  // Tokens recognisable by shape alone.
  { pattern: /\bsk-[A-Za-z0-9_-]{16,}/g, replace: REDACTED }, // OpenAI, Anthropic
  { pattern: /\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}/g, replace: REDACTED }, // Stripe
  { pattern: /\b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}/g, replace: REDACTED }, // GitHub
  { pattern: /\bgithub_pat_[A-Za-z0-9_]{20,}/g, replace: REDACTED },
  { pattern: /\bglpat-[A-Za-z0-9_-]{20,}/g, replace: REDACTED }, // GitLab
  { pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g, replace: REDACTED }, // Slack
  { pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g, replace: REDACTED }, // AWS access key id
  { pattern: /\bAIza[0-9A-Za-z_-]{35}/g, replace: REDACTED }, // Google API key
  { pattern: /\bnpm_[A-Za-z0-9]{36}/g, replace: REDACTED },
  { pattern: /\bhf_[A-Za-z0-9]{30,}/g, replace: REDACTED }, // Hugging Face
  { pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]+/g, replace: REDACTED }, // JWT
  // cmdop's own API keys, share links and join tokens (secret-token.ts): the prefix stays, so a
  // reader still sees what kind of credential was passed.
  { pattern: /\b(cmdop-(?:key|share|join)\.)(?!\[REDACTED\])[A-Za-z0-9_.-]+/g, replace: `$1${REDACTED}` },
  // HTTP credential headers: keep the scheme, drop the rest of the header value.
  {
    pattern: /\b((?:proxy-)?authorization\s*:\s*(?!(?:(?:bearer|basic|token|digest|negotiate|apikey)\s+)?\[REDACTED\])(?:(?:bearer|basic|token|digest|negotiate|apikey)\s+)?)[^\s'"][^'"\r\n]*/gi,
    replace: `$1${REDACTED}`,
  },
  {
    pattern: /(?<![a-z0-9-])((?:set-)?cookie\s*:\s*|(?:x-(?=[a-z0-9-]*?(?:token|key|secret|auth))[a-z0-9-]*|api-key|private-token)\s*:\s*)(?!\[REDACTED\])[^\s'"][^'"\r\n]*/gi,
    replace: `$1${REDACTED}`,
  },
  { pattern: /\b(bearer\s+)[A-Za-z0-9._~+/-]{8,}=*/gi, replace: `$1${REDACTED}` },
  // Passwords in URLs: scheme://user:password@host.
  { pattern: /(?<![a-z0-9+.-])([a-z][a-z0-9+.-]*:\/\/[^\s/@:'"]*:)(?!\[REDACTED\])[^\s/'"@]+(?:@[^\s/'"@]+)*(?=@)/gi, replace: `$1${REDACTED}` },
  // A whole quoted flag or assignment: '--password=two words', "DB_PASSWORD=x y".
  { pattern: new RegExp(String.raw`(["'])((?:${FLAG}|${SECRET_NAME})=)(?!\[REDACTED\])${QUOTED_REST}`, 'gi'), replace: `$1$2${REDACTED}$1` },
  // curl -u/--user user:password, quoted and not; sshpass -p; mysql -pPASSWORD.
  { pattern: new RegExp(String.raw`((?:^|\s)(?:-u|--user|--proxy-user)(?:\s+|=)(["'])[^\s:'"]*:)(?!\[REDACTED\])(?:(?!\2)[^\\]|\\.)*\2`, 'g'), replace: `$1${REDACTED}$2` },
  { pattern: new RegExp(String.raw`((?:^|\s)(?:-u|--user|--proxy-user)(?:\s+|=)[^\s:'"]*:)${VALUE}`, 'g'), replace: `$1${REDACTED}` },
  { pattern: new RegExp(String.raw`(\bsshpass\s+(?:-[a-oq-zA-Z]\S*\s+)*-p\s*)${VALUE}`, 'g'), replace: `$1${REDACTED}` },
  { pattern: new RegExp(String.raw`(\b(?:mysql|mysqldump|mysqladmin|mariadb)\b[^\n;&|]{0,512}?\s-p)${VALUE}`, 'g'), replace: `$1${REDACTED}` },
  // --password=x, --token x, --api-key "x" (a following flag is not taken as the value).
  { pattern: new RegExp(String.raw`(${FLAG}(?:=|\s+(?!-)))${VALUE}`, 'gi'), replace: `$1${REDACTED}` },
  // PASSWORD=x, GITHUB_TOKEN=x, AWS_SECRET_ACCESS_KEY=x, ?token=x&…
  { pattern: new RegExp(String.raw`(${SECRET_NAME}\s*=\s*)${VALUE}`, 'gi'), replace: `$1${REDACTED}` },
  // "password": "x" in JSON-ish text.
  { pattern: new RegExp(String.raw`("${SECRET_NAME}"\s*:\s*)"(?!\[REDACTED\])(?:[^"\\]|\\.)*(?:"|$)`, 'gi'), replace: `$1"${REDACTED}"` },
];

/** Longest free-text field kept in a record; the input digest still pins the whole input. */
export const AUDIT_TEXT_MAX = 16 * 1024;

/** Redacts text for a record and bounds its length, so one huge command cannot flood the log. */
function recordText(text: string): string {
  if (text.length <= AUDIT_TEXT_MAX) return redactTarget(text);
  // Redact a margin past the cut too, so a secret straddling the cut is still recognised whole.
  const redacted = redactTarget(text.slice(0, AUDIT_TEXT_MAX + 1024));
  return `${redacted.slice(0, AUDIT_TEXT_MAX)}…[truncated ${text.length - AUDIT_TEXT_MAX} chars]`;
}

/**
 * Replaces secrets in free text (a command line, path, rule or reason) with `[REDACTED]`:
 * secret-named flags and assignments, credential headers, URL passwords and tokens that
 * are recognisable by shape. It errs towards redacting too much.
 */
export function redactTarget(text: string): string {
  let out = text;
  for (const { pattern, replace } of REDACTIONS) out = out.replace(pattern, replace);
  return out;
}
