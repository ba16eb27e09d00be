/**
 * YAML state files parsed with their positions kept, so that a hand-edited mistake is reported
 * as `FILE line N: what is wrong`, with what to do about it.
 */
import { LineCounter, parseDocument, visit, isAlias, type Document, type Node } from 'yaml';
import type { ZodIssue } from 'zod';
import { CmdopError } from '../errors.js';

/** A parsed YAML file and what is needed to point at its lines. */
export interface YamlSource {
  readonly file: string;
  readonly text: string;
  readonly doc: Document.Parsed;
  readonly lines: LineCounter;
}

/** One problem found in a file, at a line when it is known. */
export interface SourceProblem {
  readonly line: number | undefined;
  readonly message: string;
  readonly hint?: string;
  readonly cause?: unknown;
  readonly details?: Readonly<Record<string, unknown>>;
}

/** Parses YAML text, throwing CmdopError('config') at the first syntax error or warning (an unknown tag). */
export function parseYamlSource(file: string, text: string): YamlSource {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true, strict: true });
  const source: YamlSource = { file, text, doc, lines };
  const problems = [...doc.errors, ...doc.warnings].map((error): SourceProblem => ({
    line: lines.linePos(error.pos[0]).line,
    message: `YAML ${error.name === 'YAMLWarning' ? 'problem' : 'syntax error'}: ${firstLine(error.message)}`,
    hint:
      error.code === 'DUPLICATE_KEY'
        ? 'Each key may appear once in a mapping; merge or remove the repeated one.'
        : 'Fix the YAML at that line (indentation, a missing ":" or quote). Quote any value that contains ": " or " #".',
    cause: error,
  }));
  if (problems.length > 0) throw sourceError(file, problems);
  return source;
}

/** True when the document uses aliases (`*name`), whose nodes cannot be moved between documents. */
export function hasAliases(doc: Document): boolean {
  let found = false as boolean;
  visit(doc, {
    Alias() {
      found = true;
      return visit.BREAK;
    },
  });
  return found || isAlias(doc.contents);
}

/** The 1-based line a node starts on, when it has a position. */
export function lineOf(source: YamlSource, node: unknown): number | undefined {
  if (typeof node !== 'object' || node === null || !('range' in node)) return undefined;
  const range = (node as Node).range;
  if (range === undefined || range === null) return undefined;
  return source.lines.linePos(range[0]).line;
}

/** The text of one 1-based line of the source. */
export function lineText(source: YamlSource, line: number): string {
  return source.text.split(/\r?\n/)[line - 1] ?? '';
}

/**
 * Builds the CmdopError('config') for problems in a file: the first problem (by line) makes the
 * message, all of them go into `details.problems`.
 */
export function sourceError(file: string, problems: readonly SourceProblem[]): CmdopError {
  const sorted = [...problems].sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  const first = sorted[0];
  if (first === undefined) return new CmdopError('internal', `sourceError called for ${file} with no problems`);
  const where = first.line === undefined ? file : `${file} line ${first.line}`;
  const more = sorted.length > 1 ? ` (and ${sorted.length - 1} more problem${sorted.length > 2 ? 's' : ''})` : '';
  const fix = first.line === undefined ? `Edit ${file}` : `Edit line ${first.line} of ${file}`;
  const hint = `${first.hint === undefined ? '' : `${first.hint}\n`}${fix}, then try again.`;
  return new CmdopError('config', `${where}: ${first.message}${more}`, {
    ...(first.cause === undefined ? {} : { cause: first.cause }),
    hint,
    details: {
      ...first.details,
      path: file,
      line: first.line,
      problems: sorted.map((p) => ({ line: p.line, message: p.message })),
    },
  });
}

/** Describes a zod issue in words a person editing the file understands. */
export function describeIssue(issue: ZodIssue): string {
  const at = issue.path.length === 0 ? 'the file' : formatPath(issue.path);
  switch (issue.code) {
    case 'invalid_type':
      return issue.received === 'undefined'
        ? `${at} is missing`
        : `${at} must be ${article(issue.expected)}, not ${article(yamlKind(issue.received))}`;
    case 'invalid_enum_value':
      return `${at} is ${JSON.stringify(issue.received)}; it must be one of ${issue.options.map((o) => String(o)).join(', ')}`;
    case 'invalid_literal':
      return `${at} must be ${JSON.stringify(issue.expected)}, not ${JSON.stringify(issue.received)}`;
    case 'unrecognized_keys':
      return `unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')} in ${at}`;
    default:
      return `${at}: ${issue.message}`;
  }
}

/** Formats a value path the way it reads in YAML: `tests[2].expect`. */
export function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (!/^[A-Za-z_][\w-]*$/.test(part)) out += `[${JSON.stringify(part)}]`;
    else out += out === '' ? part : `.${part}`;
  }
  return out;
}

function yamlKind(zodType: string): string {
  switch (zodType) {
    case 'object':
      return 'mapping';
    case 'array':
      return 'list';
    case 'number':
    case 'bigint':
      return 'number';
    case 'null':
      return 'empty value';
    default:
      return zodType;
  }
}

function article(type: string): string {
  const word = yamlKind(type);
  if (word === 'empty value') return 'an empty value';
  return /^[aeiou]/.test(word) ? `an ${word}` : `a ${word}`;
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
