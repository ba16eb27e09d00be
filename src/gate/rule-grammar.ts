/**
 * The rule grammar (DESIGN.md §4.2):
 *
 *   rule    = tool [ "(" body ")" ]
 *   body    = argGlob | operation ":" argGlob | operation
 *   argGlob = [ "!" ] glob
 *
 * Parsing never half-applies: a rule either parses whole into a frozen ParsedRule or throws a
 * CmdopError('invalid_input') whose message points at the problem.
 */
import { CmdopError } from '../errors.js';
import { TOOLS, TOOL_NAMES, isToolName, type ToolName } from './types.js';

export interface ParsedRule {
  /** The rule exactly as given, trimmed: what the user sees and what rule_id hashes. */
  readonly text: string;
  readonly tool: ToolName;
  /** Restricts the rule to one operation of a dispatcher tool (`connect(exec:prod-*)`). */
  readonly operation: string | undefined;
  /** The glob on the target; undefined matches every target. */
  readonly glob: string | undefined;
  /** A leading `!`: the rule matches every target the glob does not. */
  readonly negated: boolean;
}

const MAX_RULE_LENGTH = 4096;

function invalid(rule: string, problem: string, hint: string): CmdopError {
  return new CmdopError('invalid_input', `invalid rule ${JSON.stringify(rule)}: ${problem}`, {
    hint,
    details: { rule, problem },
  });
}

const EXAMPLES = "Examples: 'execute_command(git *)', 'read_file(/srv/**)', 'connect(exec:prod-*)', 'write_file'.";

/** Parses one rule, or throws a CmdopError naming what is wrong with it. */
export function parseRule(input: string): ParsedRule {
  const text = input.trim();
  if (text.length === 0) throw invalid(input, 'the rule is empty', EXAMPLES);
  if (text.length > MAX_RULE_LENGTH) {
    throw invalid(text.slice(0, 40) + '...', `the rule is longer than ${MAX_RULE_LENGTH} characters`, 'Write a shorter glob.');
  }
  // eslint-disable-next-line no-control-regex -- control characters are exactly what this refuses
  if (/[\u0000-\u001f\u007f]/.test(text)) {
    throw invalid(text, 'it contains a control character (newline, tab, NUL, ...)', 'Write the rule on one line of printable text.');
  }
  const open = text.indexOf('(');
  if (open === -1 && text.includes(')')) throw invalid(text, 'a ")" without a matching "("', EXAMPLES);
  const toolPart = open === -1 ? text : text.slice(0, open);
  const tool = toolPart.trim();
  if (tool !== toolPart) throw invalid(text, 'there is a space between the tool name and "("', EXAMPLES);
  if (!isToolName(tool)) {
    throw invalid(text, `unknown tool "${tool}"`, `Known tools: ${TOOL_NAMES.join(', ')}.`);
  }
  if (open === -1) {
    return Object.freeze({ text, tool, operation: undefined, glob: undefined, negated: false });
  }
  if (!text.endsWith(')')) {
    throw invalid(text, `missing ")" at the end (column ${text.length + 1})`, `Close the body: ${text})`);
  }
  const body = text.slice(open + 1, -1);
  if (body.trim().length === 0) {
    throw invalid(text, 'the body between "(" and ")" is empty', `Write ${tool} alone to match every call, or put a glob inside.`);
  }
  if (body !== body.trim()) {
    throw invalid(text, 'the body starts or ends with a space', 'Remove the spaces just inside the parentheses.');
  }
  const spec = TOOLS[tool];
  let operation: string | undefined;
  let argGlob: string | undefined = body;
  if (spec.operations.length > 0) {
    const colon = body.indexOf(':');
    const head = colon === -1 ? body : body.slice(0, colon);
    if (spec.operations.includes(head)) {
      operation = head;
      argGlob = colon === -1 ? undefined : body.slice(colon + 1);
      if (argGlob?.length === 0) {
        throw invalid(text, `nothing after "${head}:"`, `Write ${tool}(${head}) for every target, or ${tool}(${head}:GLOB).`);
      }
    } else if (colon !== -1 && /^[a-z_]+$/.test(head)) {
      throw invalid(text, `unknown operation "${head}" for ${tool}`, `Operations of ${tool}: ${spec.operations.join(', ')}.`);
    }
  }
  let negated = false;
  if (argGlob?.startsWith('!') === true) {
    negated = true;
    argGlob = argGlob.slice(1);
    if (argGlob.length === 0) throw invalid(text, '"!" with no glob after it', 'Write !GLOB, for example execute_command(!git *).');
  }
  if (argGlob !== undefined) checkGlobSyntax(text, argGlob);
  return Object.freeze({ text, tool, operation, glob: argGlob, negated });
}

function checkGlobSyntax(rule: string, glob: string): void {
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '\\') {
      if (i === glob.length - 1) throw invalid(rule, 'the glob ends with a lone "\\"', 'Escape a character after "\\", or remove it.');
      i++;
    } else if (c === '[') {
      const close = findClassEnd(glob, i);
      if (close === -1) {
        throw invalid(rule, `unclosed "[" at column ${rule.indexOf(glob) + i + 1}`, 'Close the character class with "]", or escape the bracket as \\[.');
      }
      i = close;
    }
  }
}

/** Index of the `]` that closes the class opened at `open`, or -1. `[]a]` and `[!]a]` include `]`. */
export function findClassEnd(glob: string, open: number): number {
  let i = open + 1;
  if (glob[i] === '!' || glob[i] === '^') i++;
  if (glob[i] === ']') i++;
  for (; i < glob.length; i++) {
    if (glob[i] === '\\') i++;
    else if (glob[i] === ']') return i;
  }
  return -1;
}

/** Escapes glob characters so a literal target can be written as an exact rule. */
export function escapeGlob(literal: string): string {
  return literal.replace(/[\\*?[\]]/g, (c) => `\\${c}`);
}

/** Builds the exact rule for one target ("allow always" at a prompt adds this, never a wider glob). */
export function exactRule(tool: ToolName, target: string, operation?: string): string {
  const body = escapeGlob(target);
  const prefixed = body.startsWith('!') ? `\\${body}` : body;
  return operation === undefined ? `${tool}(${prefixed})` : `${tool}(${operation}:${prefixed})`;
}
