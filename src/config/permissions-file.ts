/**
 * `permissions.yaml` (DESIGN.md §5, reference shape): the global rules, the mode, and an
 * optional `tests:` section that pins what the gate must decide for given requests.
 *
 * Loading validates everything once, at the edge, into a frozen {@link PermissionsDoc}; a mistake
 * in a hand-edited file is reported with its line, the rule at fault, and what to do. Changes
 * go through {@link updatePermissions}: lock, re-read, mutate, validate, atomic write.
 */
import { Document, isMap, isScalar, isSeq, Pair, Scalar, YAMLMap, YAMLSeq, parseDocument, type Node } from 'yaml';
import { z } from 'zod';
import { CmdopError } from '../errors.js';
import { parseRule } from '../gate/rule-grammar.js';
import {
  MODES,
  RULE_EFFECTS,
  TOOLS,
  TOOL_NAMES,
  isToolName,
  type Decision,
  type GateRequest,
  type Mode,
  type RuleEffect,
} from '../gate/types.js';
import { ensureCmdopHome, permissionsPath } from './cmdop-home.js';
import { updateStateFile } from './file-lock.js';
import { readSecureFile } from './secure-file.js';
import {
  describeIssue,
  hasAliases,
  lineOf,
  lineText,
  parseYamlSource,
  sourceError,
  type SourceProblem,
  type YamlSource,
} from './yaml-source.js';

/** A test request written as a mapping. */
export interface TestRequestObject {
  readonly tool: string;
  readonly operation?: string;
  readonly target: string;
}

/** A test request as written in the file: `'tool(target)'` or `{ tool, operation?, target }`. */
export type WrittenTestRequest = string | TestRequestObject;

/** One entry of `tests:`: a request and the decision the gate must give it. */
export interface PermissionsTest {
  /** The request as written in the file; written back unchanged. */
  readonly written: WrittenTestRequest;
  /** The request the gate is asked about. */
  readonly request: GateRequest;
  readonly expect: Decision;
  /** The line of permissions.yaml the test was read from; undefined for a test not read from the file. */
  readonly line: number | undefined;
}

/** The validated, frozen content of `permissions.yaml`. */
export interface PermissionsDoc {
  readonly version: 1;
  readonly mode: Mode;
  readonly allow: readonly string[];
  readonly deny: readonly string[];
  readonly ask: readonly string[];
  /** Why a rule was added, by rule text. */
  readonly reasons: Readonly<Record<string, string>>;
  /** When a rule was added (ISO 8601), by rule text. */
  readonly created_at: Readonly<Record<string, string>>;
  readonly tests: readonly PermissionsTest[];
}

/** Options for {@link updatePermissions}. */
export interface UpdatePermissionsOptions {
  /**
   * Runs on the changed document inside the lock, before anything is written; throwing refuses
   * the change and leaves the file untouched (the CLI runs the `tests:` section through the gate here).
   */
  readonly validate?: (doc: PermissionsDoc) => void | Promise<void>;
}

/** Options for {@link addRule}. */
export interface AddRuleOptions {
  /** Why the rule is added; stored in `reasons`. */
  readonly reason?: string | undefined;
  /** The time stored in `created_at`. */
  readonly now: Date;
}

/** What {@link addRule} did. */
export interface AddRuleResult {
  readonly doc: PermissionsDoc;
  /** The rule as stored (trimmed). */
  readonly rule: string;
  readonly effect: RuleEffect;
  /** `unchanged`: the rule was already in that list (with that reason, if one was given). */
  readonly status: 'added' | 'unchanged' | 'reason_updated';
}

/** What {@link revokeRule} did. */
export interface RevokeRuleResult {
  readonly doc: PermissionsDoc;
  readonly rule: string;
  /** The lists the rule was removed from. */
  readonly removedFrom: readonly RuleEffect[];
}

/** What {@link setMode} did. */
export interface SetModeResult {
  readonly doc: PermissionsDoc;
  readonly mode: Mode;
  readonly previous: Mode;
  readonly changed: boolean;
}

/** The document a missing `permissions.yaml` stands for: mode default, no rules, no tests. */
export const EMPTY_PERMISSIONS: PermissionsDoc = deepFreeze({
  version: 1,
  mode: 'default',
  allow: [],
  deny: [],
  ask: [],
  reasons: {},
  created_at: {},
  tests: [],
});

const TOP_LEVEL_KEYS = ['version', 'mode', 'allow', 'deny', 'ask', 'reasons', 'created_at', 'tests'] as const;
type TopLevelKey = (typeof TOP_LEVEL_KEYS)[number];

const MAX_REASON_LENGTH = 500;

const ruleList = z.array(z.string()).nullish();
const fileSchema = z
  .object({
    version: z.literal(1),
    mode: z.enum(['default', 'strict', 'bypass']).nullish(),
    allow: ruleList,
    deny: ruleList,
    ask: ruleList,
    reasons: z.record(z.string(), z.string()).nullish(),
    created_at: z
      .record(z.string(), z.string().datetime({ offset: true, message: 'must be an ISO 8601 time such as 2026-04-23T10:00:00Z' }))
      .nullish(),
    tests: z
      .array(
        z
          .object({
            request: z.union([z.string(), z.record(z.string(), z.unknown())], {
              errorMap: () => ({ message: 'must be "tool(target)" or a mapping with tool, target and optionally operation' }),
            }),
            expect: z.enum(['allow', 'deny', 'ask']),
          })
          .strict(),
      )
      .nullish(),
  })
  .strict();
type RawPermissions = z.infer<typeof fileSchema>;

/** A problem found while checking a document, located by its path in the document. */
interface DocProblem {
  readonly path: readonly (string | number)[];
  readonly message: string;
  readonly hint?: string;
  readonly cause?: unknown;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Reads `permissions.yaml` from the state directory; a missing file gives {@link EMPTY_PERMISSIONS}. */
export async function loadPermissions(home: string): Promise<PermissionsDoc> {
  const file = permissionsPath(home);
  const text = await readSecureFile(file);
  return text === undefined ? EMPTY_PERMISSIONS : parsePermissions(text, file);
}

/** Parses the text of a permissions file, throwing CmdopError('config') naming `file`, the line and the fix. */
export function parsePermissions(text: string, file: string): PermissionsDoc {
  const source = parseYamlSource(file, text);
  const { doc } = source;
  const contents = doc.contents;
  if (contents === null) {
    throw sourceError(file, [
      { line: undefined, message: 'the file is empty', hint: 'Write "version: 1" in it, or delete it to start from the defaults (mode default, no rules).' },
    ]);
  }
  if (!isMap(contents)) {
    throw sourceError(file, [
      {
        line: lineOf(source, contents),
        message: 'the file must be a mapping of version, mode, allow, deny, ask, reasons, created_at and tests',
        hint: 'Start from:\n  version: 1\n  mode: default\n  allow: []\n  deny: []\n  ask: []',
      },
    ]);
  }

  const keyProblems: SourceProblem[] = [];
  for (const pair of contents.items) {
    const key = isScalar(pair.key) ? pair.key.value : undefined;
    if (typeof key !== 'string' || !(TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
      keyProblems.push({
        line: lineOf(source, pair.key),
        message: `unknown key ${JSON.stringify(typeof key === 'string' ? key : String(key))}`,
        hint: `Known keys: ${TOP_LEVEL_KEYS.join(', ')}. Check the spelling, or remove it.`,
      });
    }
  }
  if (keyProblems.length > 0) throw sourceError(file, keyProblems);

  const versionNode = contents.get('version', true);
  if (versionNode === undefined) {
    throw sourceError(file, [{ line: 1, message: 'there is no "version:"', hint: 'Add "version: 1" as the first line.' }]);
  }
  const version: unknown = isScalar(versionNode) ? versionNode.value : undefined;
  if (version !== 1) {
    throw sourceError(file, [
      {
        line: lineOf(source, versionNode),
        message: `version ${JSON.stringify(version ?? null)} is not supported; this cmdop reads version 1`,
        hint: 'Write "version: 1" (and the rest of the file in the version 1 shape), or upgrade cmdop.',
      },
    ]);
  }

  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 50 });
  } catch (error) {
    throw sourceError(file, [{ line: undefined, message: `cannot read the YAML: ${error instanceof Error ? error.message : String(error)}`, cause: error }]);
  }
  const parsed = fileSchema.safeParse(value);
  if (!parsed.success) {
    throw sourceError(
      file,
      parsed.error.issues.map((issue) => locate(source, { path: issue.path, message: describeIssue(issue), ...issueHint(issue.path, issue) })),
    );
  }
  const problems: DocProblem[] = [];
  const result = buildDoc(parsed.data, (index) => lineOf(source, doc.getIn(['tests', index], true)), problems);
  if (result === undefined || problems.length > 0) {
    throw sourceError(file, problems.map((problem) => locate(source, problem)));
  }
  return result;
}

/**
 * Checks a document built in code (the result of a mutation) exactly as a loaded file is checked,
 * and returns it frozen; a problem throws CmdopError('invalid_input').
 */
export function normalisePermissions(doc: PermissionsDoc): PermissionsDoc {
  const parsed = fileSchema.safeParse(toPlain(doc));
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new CmdopError('invalid_input', `invalid permissions document: ${issue === undefined ? parsed.error.message : describeIssue(issue)}`, {
      details: { problems: parsed.error.issues.map((i) => describeIssue(i)) },
    });
  }
  const problems: DocProblem[] = [];
  const result = buildDoc(parsed.data, (index) => doc.tests[index]?.line, problems);
  const first = problems[0];
  if (result === undefined || first !== undefined) {
    throw new CmdopError('invalid_input', first === undefined ? 'invalid permissions document' : first.message, {
      ...(first?.cause === undefined ? {} : { cause: first.cause }),
      ...(first?.hint === undefined ? {} : { hint: first.hint }),
      details: { ...first?.details, problems: problems.map((p) => p.message) },
    });
  }
  return result;
}

/**
 * Changes `permissions.yaml` safely against concurrent writers: takes the exclusive lock,
 * re-reads the file, applies `mutate`, runs `options.validate`, writes atomically with mode
 * 0600, and releases the lock. Returns the document as now on disk. When the mutation changes
 * nothing, nothing is validated or written. Any error leaves the file byte-for-byte as it was.
 */
export async function updatePermissions(
  home: string,
  mutate: (doc: PermissionsDoc) => PermissionsDoc | Promise<PermissionsDoc>,
  options: UpdatePermissionsOptions = {},
): Promise<PermissionsDoc> {
  await ensureCmdopHome(home);
  const file = permissionsPath(home);
  let result: PermissionsDoc | undefined;
  await updateStateFile(file, async (current) => {
    const before = current === undefined ? EMPTY_PERMISSIONS : parsePermissions(current, file);
    const proposed = normalisePermissions(await mutate(before));
    if (canonicalJson(proposed) === canonicalJson(before)) {
      result = before;
      return undefined;
    }
    await options.validate?.(proposed);
    const text = serialisePermissions(proposed, current);
    // Never write what would not read back as the same document.
    let reread: PermissionsDoc;
    try {
      reread = parsePermissions(text, file);
    } catch (error) {
      throw new CmdopError('internal', `the new ${file} would not read back; nothing was written`, { cause: error });
    }
    if (canonicalJson(reread) !== canonicalJson(proposed)) {
      throw new CmdopError('internal', `the new ${file} would read back differently; nothing was written`);
    }
    result = reread;
    return text;
  });
  if (result === undefined) throw new CmdopError('internal', 'updatePermissions finished without a document');
  return result;
}

/**
 * Serialises a document in a stable order (version, mode, allow, deny, ask, reasons, created_at,
 * tests). Given the previous file text, comments on sections and entries that still exist are kept.
 */
export function serialisePermissions(doc: PermissionsDoc, previous?: string): string {
  const plain = toPlain(doc);
  const out = new Document();
  const old = previousDocument(previous);
  const oldMap = old !== undefined && isMap(old.contents) ? old.contents : undefined;
  const map = new YAMLMap();
  for (const key of TOP_LEVEL_KEYS) {
    const value = plain[key];
    if (key === 'tests' && (value === undefined || (Array.isArray(value) && value.length === 0))) continue;
    const oldPair = oldMap?.items.find((pair) => isScalar(pair.key) && pair.key.value === key);
    const keyNode = isScalar(oldPair?.key) ? oldPair.key : out.createNode(key);
    const quoteKeys = key === 'reasons' || key === 'created_at';
    map.items.push(new Pair(keyNode, mergeNode(out, old, oldPair?.value, value, quoteKeys)));
  }
  out.contents = map;
  if (old?.comment) out.comment = old.comment;
  if (old?.commentBefore) out.commentBefore = old.commentBefore;
  // lineWidth 0: never fold a long rule over several lines.
  return out.toString({ lineWidth: 0 });
}

/**
 * Adds `rule` to the `effect` list, recording `created_at` and the reason. Adding a rule already in
 * that list is a no-op (or updates its reason); a rule already in another list is refused
 * with CmdopError('invalid_input'): revoke it first.
 */
export function addRule(doc: PermissionsDoc, effect: RuleEffect, rule: string, options: AddRuleOptions): AddRuleResult {
  const text = parseRule(rule).text;
  const reason = options.reason === undefined ? undefined : checkReason(options.reason);
  for (const other of RULE_EFFECTS) {
    if (other !== effect && doc[other].includes(text)) {
      throw new CmdopError('invalid_input', `rule ${JSON.stringify(text)} is already in ${other}; a rule can be in one list only`, {
        hint: `Revoke it first (cmdop permissions revoke '${text}'), then add it to ${effect}.`,
        details: { rule: text, list: other },
      });
    }
  }
  if (doc[effect].includes(text)) {
    if (reason === undefined || doc.reasons[text] === reason) return { doc, rule: text, effect, status: 'unchanged' };
    return { doc: withChanges(doc, { reasons: { ...doc.reasons, [text]: reason } }), rule: text, effect, status: 'reason_updated' };
  }
  const reasons = withoutKey(doc.reasons, text);
  const next = withChanges(doc, {
    [effect]: [...doc[effect], text],
    reasons: reason === undefined ? reasons : { ...reasons, [text]: reason },
    created_at: { ...doc.created_at, [text]: isoSeconds(options.now) },
  });
  return { doc: next, rule: text, effect, status: 'added' };
}

/** Removes `rule` from every list it is in, with its reason and time; an absent rule is CmdopError('not_found'). */
export function revokeRule(doc: PermissionsDoc, rule: string): RevokeRuleResult {
  const text = parseRule(rule).text;
  const removedFrom = RULE_EFFECTS.filter((effect) => doc[effect].includes(text));
  if (removedFrom.length === 0) {
    const tool = text.split('(')[0] ?? text;
    const similar = RULE_EFFECTS.flatMap((effect) => doc[effect].filter((r) => r.split('(')[0] === tool).map((r) => `${effect}: ${r}`));
    throw new CmdopError('not_found', `rule ${JSON.stringify(text)} is not in allow, deny or ask`, {
      hint:
        similar.length > 0
          ? `Revoke takes a rule exactly as listed. Rules for ${tool}: ${similar.join('; ')}.`
          : 'Revoke takes a rule exactly as listed by: cmdop permissions list',
      details: { rule: text },
    });
  }
  const next = withChanges(doc, {
    allow: doc.allow.filter((r) => r !== text),
    deny: doc.deny.filter((r) => r !== text),
    ask: doc.ask.filter((r) => r !== text),
    reasons: withoutKey(doc.reasons, text),
    created_at: withoutKey(doc.created_at, text),
  });
  return { doc: next, rule: text, removedFrom };
}

/** Sets the mode; an unknown mode is CmdopError('invalid_input') listing the modes. */
export function setMode(doc: PermissionsDoc, mode: string): SetModeResult {
  if (!(MODES as readonly string[]).includes(mode)) {
    throw new CmdopError('invalid_input', `unknown mode ${JSON.stringify(mode)}`, {
      hint: `Modes: ${MODES.join(', ')}.`,
      details: { mode },
    });
  }
  const next = mode as Mode;
  if (next === doc.mode) return { doc, mode: next, previous: doc.mode, changed: false };
  return { doc: withChanges(doc, { mode: next }), mode: next, previous: doc.mode, changed: true };
}

/** Builds a test entry for `tests:` from a request as it would be written; a bad request is CmdopError('invalid_input'). */
export function createPermissionsTest(written: WrittenTestRequest, expect: Decision): PermissionsTest {
  const checked = checkTestRequest(written);
  if ('problem' in checked) throw new CmdopError('invalid_input', `test request ${describeWritten(written)}: ${checked.problem}`, { hint: checked.hint });
  return deepFreeze({ written: copyWritten(written), request: checked.request, expect, line: undefined });
}

/**
 * Parses a request written as `tool(target)` (or `connect(exec:prod-1)` for a dispatcher's
 * operation); the target is taken literally. A bad request is CmdopError('invalid_input').
 */
export function parseTestRequest(text: string): GateRequest {
  const checked = checkTestRequest(text);
  if ('problem' in checked) {
    throw new CmdopError('invalid_input', `request ${JSON.stringify(text)}: ${checked.problem}`, { hint: checked.hint, details: { request: text } });
  }
  return checked.request;
}

// ---------------------------------------------------------------------------------------------

type Checked = { readonly request: GateRequest } | { readonly problem: string; readonly hint: string };

const REQUEST_EXAMPLE = 'Write it as tool(target), e.g. execute_command(git status), read_file(/srv/app.log), connect(exec:prod-1).';

function checkTestRequest(written: WrittenTestRequest | Readonly<Record<string, unknown>>): Checked {
  if (typeof written === 'string') {
    const text = written.trim();
    const open = text.indexOf('(');
    if (open === -1 || !text.endsWith(')')) return { problem: 'it is not of the form tool(target)', hint: REQUEST_EXAMPLE };
    const tool = text.slice(0, open);
    const body = text.slice(open + 1, -1);
    if (!isToolName(tool)) return { problem: `unknown tool "${tool}"`, hint: `Known tools: ${TOOL_NAMES.join(', ')}.` };
    const colon = body.indexOf(':');
    const head = colon === -1 ? '' : body.slice(0, colon);
    if (TOOLS[tool].operations.includes(head)) return checkRequestParts(tool, head, body.slice(colon + 1));
    return checkRequestParts(tool, undefined, body);
  }
  for (const key of Object.keys(written)) {
    if (key !== 'tool' && key !== 'operation' && key !== 'target') {
      return { problem: `unknown key "${key}"`, hint: 'A request mapping has tool, target and optionally operation.' };
    }
  }
  const { tool, operation, target } = written as Readonly<Record<string, unknown>>;
  if (typeof tool !== 'string') return { problem: 'tool must be a string', hint: `Known tools: ${TOOL_NAMES.join(', ')}.` };
  if (!isToolName(tool)) return { problem: `unknown tool "${tool}"`, hint: `Known tools: ${TOOL_NAMES.join(', ')}.` };
  if (typeof target !== 'string') return { problem: 'target must be a string', hint: 'target is the command line, path or host name rules match against.' };
  if (operation !== undefined && typeof operation !== 'string') return { problem: 'operation must be a string', hint: `Operations of ${tool}: ${TOOLS[tool].operations.join(', ') || 'none'}.` };
  return checkRequestParts(tool, operation, target);
}

function checkRequestParts(tool: keyof typeof TOOLS, operation: string | undefined, target: string): Checked {
  const ops = TOOLS[tool].operations;
  if (operation !== undefined && !ops.includes(operation)) {
    return {
      problem: ops.length === 0 ? `${tool} has no operations` : `unknown operation "${operation}" for ${tool}`,
      hint: ops.length === 0 ? `Remove the operation.` : `Operations of ${tool}: ${ops.join(', ')}.`,
    };
  }
  if (target.length === 0) return { problem: 'the target is empty', hint: REQUEST_EXAMPLE };
  // eslint-disable-next-line no-control-regex -- a NUL or newline in a pinned target is a typo, not a test
  if (/[\u0000\u000a\u000d]/.test(target)) return { problem: 'the target contains a NUL or line break', hint: 'Write the target on one line.' };
  return { request: Object.freeze(operation === undefined ? { tool, target } : { tool, operation, target }) };
}

function buildDoc(
  raw: RawPermissions,
  testLine: (index: number) => number | undefined,
  problems: DocProblem[],
): PermissionsDoc | undefined {
  const lists: Record<RuleEffect, string[]> = { allow: [], deny: [], ask: [] };
  const seen = new Map<string, { effect: RuleEffect; index: number }>();
  for (const effect of RULE_EFFECTS) {
    (raw[effect] ?? []).forEach((item, index) => {
      let text: string;
      try {
        text = parseRule(item).text;
      } catch (error) {
        const cmdop = CmdopError.from(error);
        const problem = typeof cmdop.details?.problem === 'string' ? cmdop.details.problem : cmdop.message;
        problems.push({
          path: [effect, index],
          message: `${effect} rule ${JSON.stringify(item)}: ${problem}`,
          ...(cmdop.hint === undefined ? {} : { hint: cmdop.hint }),
          cause: error,
          details: { rule: item, list: effect },
        });
        return;
      }
      const earlier = seen.get(text);
      if (earlier !== undefined) {
        problems.push({
          path: [effect, index],
          message:
            earlier.effect === effect
              ? `${effect} rule ${JSON.stringify(text)} is listed twice`
              : `rule ${JSON.stringify(text)} is in both ${earlier.effect} and ${effect}`,
          hint: earlier.effect === effect ? 'Remove one of the two.' : 'A rule belongs to one list; remove it from the one you do not mean.',
          details: { rule: text, list: effect, first: [earlier.effect, earlier.index] },
        });
        return;
      }
      seen.set(text, { effect, index });
      lists[effect].push(text);
    });
  }

  const tests: PermissionsTest[] = [];
  (raw.tests ?? []).forEach((entry, index) => {
    const checked = checkTestRequest(entry.request);
    if ('problem' in checked) {
      problems.push({
        path: ['tests', index, 'request'],
        message: `test request ${describeWritten(entry.request)}: ${checked.problem}`,
        hint: checked.hint,
        details: { test: index },
      });
      return;
    }
    const { tool, operation, target } = checked.request;
    const written: WrittenTestRequest =
      typeof entry.request === 'string' ? entry.request : operation === undefined ? { tool, target } : { tool, operation, target };
    tests.push({ written, request: checked.request, expect: entry.expect, line: testLine(index) });
  });

  if (problems.length > 0) return undefined;
  return deepFreeze({
    version: 1,
    mode: raw.mode ?? 'default',
    allow: lists.allow,
    deny: lists.deny,
    ask: lists.ask,
    reasons: Object.fromEntries(Object.entries(raw.reasons ?? {})),
    created_at: Object.fromEntries(Object.entries(raw.created_at ?? {})),
    tests,
  });
}

/** The document as plain data, in the shape of the file. */
function toPlain(doc: PermissionsDoc): Record<TopLevelKey, unknown> {
  return {
    version: doc.version,
    mode: doc.mode,
    allow: [...doc.allow],
    deny: [...doc.deny],
    ask: [...doc.ask],
    reasons: { ...doc.reasons },
    created_at: { ...doc.created_at },
    tests: doc.tests.map((test) => ({ request: copyWritten(test.written), expect: test.expect })),
  };
}

function canonicalJson(doc: PermissionsDoc): string {
  const plain = toPlain(doc);
  return JSON.stringify(TOP_LEVEL_KEYS.map((key) => [key, plain[key]]));
}

function copyWritten(written: WrittenTestRequest): WrittenTestRequest {
  if (typeof written === 'string') return written;
  return written.operation === undefined
    ? { tool: written.tool, target: written.target }
    : { tool: written.tool, operation: written.operation, target: written.target };
}

function describeWritten(written: unknown): string {
  return typeof written === 'string' ? JSON.stringify(written) : JSON.stringify(written ?? null);
}

function locate(source: YamlSource, problem: DocProblem): SourceProblem {
  // The deepest node on the path that exists: a missing key points at its parent.
  let line: number | undefined;
  for (let depth = problem.path.length; depth > 0 && line === undefined; depth--) {
    line = lineOf(source, source.doc.getIn(problem.path.slice(0, depth), true));
  }
  let hint = problem.hint;
  if (line !== undefined && problem.path.length === 2 && RULE_EFFECTS.includes(problem.path[0] as RuleEffect) && lineText(source, line).includes(' #')) {
    hint = `${hint ?? ''} Note: YAML reads " #" as the start of a comment; quote the rule: - '...'.`.trim();
  }
  return {
    line,
    message: problem.message,
    ...(hint === undefined ? {} : { hint }),
    ...(problem.cause === undefined ? {} : { cause: problem.cause }),
    ...(problem.details === undefined ? {} : { details: problem.details }),
  };
}

function issueHint(path: readonly (string | number)[], issue: z.ZodIssue): { hint?: string } {
  const [section] = path;
  if (issue.code === 'invalid_type' && typeof section === 'string' && (RULE_EFFECTS as readonly string[]).includes(section)) {
    if (path.length === 2 && issue.received === 'object') {
      return { hint: `A rule containing ": " reads as a mapping in YAML; put it in quotes, e.g. - 'execute_command(echo a: b)'.` };
    }
    if (path.length === 1) return { hint: `${section} is a list of rules, one per line: "  - execute_command(git *)".` };
    return { hint: 'Each rule is a string such as execute_command(git *).' };
  }
  if (section === 'mode') return { hint: `Modes: ${MODES.join(', ')}.` };
  if (section === 'tests') return { hint: 'Each test is a mapping: { request: "tool(target)", expect: allow|deny|ask }.' };
  return {};
}

function checkReason(reason: string): string {
  const text = reason.trim();
  if (text.length === 0) throw new CmdopError('invalid_input', 'the reason is empty', { hint: 'Give a short reason, or leave --reason out.' });
  if (text.length > MAX_REASON_LENGTH) {
    throw new CmdopError('invalid_input', `the reason is longer than ${MAX_REASON_LENGTH} characters`, { hint: 'Give a shorter reason.' });
  }
  // eslint-disable-next-line no-control-regex -- a reason is one line of text in `permissions list`
  if (/[\u0000-\u001f\u007f]/.test(text)) {
    throw new CmdopError('invalid_input', 'the reason contains a control character (newline, tab, ...)', { hint: 'Write the reason on one line.' });
  }
  return text;
}

function isoSeconds(now: Date): string {
  if (Number.isNaN(now.getTime())) throw new CmdopError('invalid_input', 'the time given for created_at is not a valid date');
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function withChanges(doc: PermissionsDoc, changes: Partial<Omit<PermissionsDoc, 'version'>>): PermissionsDoc {
  return deepFreeze({ ...doc, ...changes });
}

function withoutKey(record: Readonly<Record<string, string>>, key: string): Record<string, string> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

function previousDocument(previous: string | undefined): Document.Parsed | undefined {
  if (previous === undefined) return undefined;
  const doc = parseDocument(previous, { uniqueKeys: true });
  // Nodes are moved into the new document; aliases could point at anchors left behind.
  if (doc.errors.length > 0 || !isMap(doc.contents) || hasAliases(doc)) return undefined;
  return doc;
}

/** Reuses the old node (and so its comments) where the value is unchanged, recursing into lists and mappings. */
function mergeNode(out: Document, old: Document | undefined, oldNode: unknown, value: unknown, quoteKeys: boolean): Node {
  const oldValue: unknown = old !== undefined && (isScalar(oldNode) || isSeq(oldNode) || isMap(oldNode)) ? oldNode.toJS(old) : undefined;
  if (old !== undefined && (isScalar(oldNode) || isSeq(oldNode) || isMap(oldNode)) && JSON.stringify(oldValue) === JSON.stringify(value)) {
    return oldNode;
  }
  if (Array.isArray(value)) {
    const seq = new YAMLSeq();
    if (isSeq(oldNode)) seq.flow = oldNode.flow ?? false;
    const used = new Set<number>();
    for (const item of value as unknown[]) {
      const index = isSeq(oldNode) && old !== undefined
        ? oldNode.items.findIndex((node, i) => !used.has(i) && isNodeLike(node) && JSON.stringify(node.toJS(old)) === JSON.stringify(item))
        : -1;
      const reused = isSeq(oldNode) ? oldNode.items[index] : undefined;
      if (index !== -1 && isNodeLike(reused)) {
        used.add(index);
        seq.items.push(reused);
      } else {
        seq.items.push(out.createNode(item));
      }
    }
    if (seq.items.length === 0) seq.flow = true;
    return seq;
  }
  if (typeof value === 'object' && value !== null) {
    const map = new YAMLMap();
    if (isMap(oldNode)) map.flow = oldNode.flow ?? false;
    for (const [key, inner] of Object.entries(value)) {
      const oldPair = isMap(oldNode) ? oldNode.items.find((pair) => isScalar(pair.key) && pair.key.value === key) : undefined;
      let keyNode: Scalar;
      if (isScalar(oldPair?.key)) {
        keyNode = oldPair.key;
      } else {
        keyNode = new Scalar(key);
        if (quoteKeys) keyNode.type = Scalar.QUOTE_DOUBLE;
      }
      map.items.push(new Pair(keyNode, mergeNode(out, old, oldPair?.value, inner, false)));
    }
    if (map.items.length === 0) map.flow = true;
    return map;
  }
  const scalar = out.createNode(value);
  if (isScalar(oldNode) && isScalar(scalar)) {
    // A changed value keeps the comments around it.
    if (oldNode.commentBefore) scalar.commentBefore = oldNode.commentBefore;
    if (oldNode.comment) scalar.comment = oldNode.comment;
  }
  return scalar;
}

function isNodeLike(node: unknown): node is Scalar | YAMLSeq | YAMLMap {
  return isScalar(node) || isSeq(node) || isMap(node);
}
