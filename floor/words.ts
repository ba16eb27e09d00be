/**
 * What a shell word can stand for, as far as the floor can tell without running anything:
 * static words as they are; `$HOME`, `$PWD`, `$CMDOP_HOME`, `$(pwd)` and ANSI-C quoting
 * resolved; other expansions taken both as empty (an unset variable — `rm -rf $DIR/`) and as
 * "anything" for name checks (`.e$(x)v` may be `.env`); braces expanded.
 */
import type { ShellWord } from '../src/shared/types.js';
import { braceGlob, expandBraces, mayHaveBraces } from './glob.js';

/** The values the floor knows for a few variables. */
export interface WordEnv {
  readonly home: string;
  readonly cwd: string;
  readonly cmdopHome: string;
}

/** One way to read a word. */
export interface WordReading {
  readonly text: string;
  /** `*`, `?` and `[` in the text are glob characters. */
  readonly glob: boolean;
  /** Only names are checked (the text has unknown parts standing in as `*`). */
  readonly namesOnly: boolean;
  /** Leading-dot rule off for this reading (an unknown part may start with a dot). */
  readonly dotOk: boolean;
  /** A brace expansion too large to expand, read as a glob that matches at least its words. */
  readonly braceGlob?: boolean;
}

/** A marker for an expansion that is known to be non-empty (`${X:?}`): matches nothing protected. */
export const NON_EMPTY_UNKNOWN = '\u0001';

/** What decoding a word's dynamic text found. */
export interface DynamicText {
  /** Unknown expansions as empty (or their `:-` default, or NON_EMPTY_UNKNOWN). */
  readonly unset: string;
  /** Unknown expansions as `*`. */
  readonly pattern: string;
  readonly unknown: boolean;
  /** Some part is the output of a command (`$(...)`, backticks, `<(...)`). */
  readonly substitution: boolean;
  /** Some part is a command's output through `$(...)` or backticks (not `$(pwd)`). */
  readonly output: boolean;
  /**
   * Some part cuts or rewrites a value (`${X:0:1}`, `${X/a/b}`, `${X#*a}`, `${X%%/*}`,
   * `${X,,}`, `${X@Q}`): it can make `/` or a short prefix out of any value, a known one too.
   */
  readonly transformed: boolean;
}

const NAME_START = /[A-Za-z_]/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const SPECIAL_PARAMETER = /[0-9@*#?$!-]/;

/** Decodes the text of a non-static word (the parser keeps expansions verbatim in it). */
export function decodeDynamic(text: string, env: WordEnv): DynamicText {
  let unset = '';
  let pattern = '';
  let unknown = false;
  let substitution = false;
  let output = false;
  let transformed = false;
  // Whether `pattern` ends in `*`, kept aside: `endsWith` on a string built by `+=` flattens it,
  // which made a word of many expansions (`"$a""$a"…`) quadratic.
  let star = false;
  const known = (value: string): void => {
    unset += value;
    pattern += value;
    if (value !== '') star = value.endsWith('*');
  };
  const missing = (whenUnset: string): void => {
    unknown = true;
    unset += whenUnset;
    if (!star) pattern += '*';
    star = true;
  };
  let i = 0;
  while (i < text.length) {
    const c = text.charAt(i);
    const next = text[i + 1];
    if (c === '$' && next === "'") {
      const end = closingQuote(text, i + 2);
      known(decodeAnsiC(text.slice(i + 2, end)));
      i = end + 1;
    } else if (c === '$' && next === '"') {
      const end = text.indexOf('"', i + 2);
      const stop = end === -1 ? text.length : end;
      known(text.slice(i + 2, stop));
      i = stop + 1;
    } else if (c === '$' && next === '{') {
      const end = matching(text, i + 1, '{', '}');
      const resolved = parameter(text.slice(i + 2, end), env);
      if (resolved.transformed) transformed = true;
      if (resolved.value !== undefined) known(resolved.value);
      else missing(resolved.whenUnset);
      i = end + 1;
    } else if (c === '$' && next === '(') {
      const end = matching(text, i + 1, '(', ')');
      const inner = text.slice(i + 2, end).trim();
      if (inner === 'pwd') known(env.cwd);
      else {
        if (!inner.startsWith('(')) {
          substitution = true;
          output = true;
        }
        missing('');
      }
      i = end + 1;
    } else if (c === '$' && next !== undefined && NAME_START.test(next)) {
      const name = NAME.exec(text.slice(i + 1))?.[0] ?? '';
      const value = knownVariable(name, env);
      if (value !== undefined) known(value);
      else missing('');
      i += 1 + name.length;
    } else if (c === '$' && next !== undefined && SPECIAL_PARAMETER.test(next)) {
      missing('');
      i += 2;
    } else if (c === '`') {
      const end = text.indexOf('`', i + 1);
      const stop = end === -1 ? text.length : end;
      if (text.slice(i + 1, stop).trim() === 'pwd') known(env.cwd);
      else {
        substitution = true;
        output = true;
        missing('');
      }
      i = stop + 1;
    } else if ((c === '<' || c === '>') && next === '(') {
      const end = matching(text, i + 1, '(', ')');
      substitution = true;
      missing('');
      i = end + 1;
    } else {
      known(c);
      i++;
    }
  }
  return { unset, pattern, unknown, substitution, output, transformed };
}

function knownVariable(name: string, env: WordEnv): string | undefined {
  switch (name) {
    case 'HOME':
      return env.home;
    case 'PWD':
      return env.cwd;
    case 'CMDOP_HOME':
      return env.cmdopHome;
    case 'XDG_CONFIG_HOME':
      return `${env.home}/.config`;
    default:
      return undefined;
  }
}

/** A parameter's name in `${...}`: a variable, a positional parameter or a special one. */
const PARAMETER_NAME = /^(?:[A-Za-z_][A-Za-z0-9_]*|\d+|[@*#?$!-])/;
/** After the name (and an array subscript): substring `:N`, pattern removal and replacement, case and `@` operators. */
const TRANSFORM = /^(?:\[[^\]]*\])?(?::(?![-=?+])|[/#%^,@])/;

/** `${...}`: a known variable's value, or what the word holds when the variable is unset. */
function parameter(inner: string, env: WordEnv): { value: string | undefined; whenUnset: string; transformed: boolean } {
  // `${#X}` is a length; `${!X}` names another variable (`${!X/a/b}` still rewrites it).
  if (inner.startsWith('#') && inner.length > 1) return { value: undefined, whenUnset: '', transformed: false };
  if (inner.startsWith('!')) return { value: undefined, whenUnset: '', transformed: TRANSFORM.test(inner.slice(1).replace(PARAMETER_NAME, '')) };
  const any = PARAMETER_NAME.exec(inner)?.[0] ?? '';
  if (TRANSFORM.test(inner.slice(any.length))) return { value: undefined, whenUnset: '', transformed: true };
  const name = NAME.exec(inner)?.[0] ?? '';
  const rest = inner.slice(name.length);
  const operator = /^:?[-=?+]/.exec(rest)?.[0] ?? '';
  const value = knownVariable(name, env);
  if (value !== undefined && (rest === '' || (operator !== '' && !operator.endsWith('+')))) return { value, whenUnset: '', transformed: false };
  if (operator.endsWith('-') || operator.endsWith('=')) return { value: undefined, whenUnset: rest.slice(operator.length), transformed: false };
  if (operator.endsWith('?')) return { value: undefined, whenUnset: NON_EMPTY_UNKNOWN, transformed: false };
  return { value: undefined, whenUnset: '', transformed: false };
}

function matching(text: string, open: number, openChar: string, closeChar: string): number {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') i++;
    else if (c === openChar) depth++;
    else if (c === closeChar && --depth === 0) return i;
  }
  return text.length;
}

function closingQuote(text: string, from: number): number {
  for (let i = from; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === "'") return i;
  }
  return text.length;
}

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = { n: '\n', t: '\t', r: '\r', a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };

/** Decodes the body of `$'...'` as bash does. */
function decodeAnsiC(body: string): string {
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body.charAt(i);
    if (c !== '\\' || i + 1 >= body.length) {
      out += c;
      continue;
    }
    const e = body.charAt(++i);
    const simple = SIMPLE_ESCAPES[e];
    if (simple !== undefined) {
      out += simple;
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const max = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const digits = /^[0-9a-fA-F]+/.exec(body.slice(i + 1, i + 1 + max))?.[0] ?? '';
      if (digits === '') out += `\\${e}`;
      else {
        const code = Number.parseInt(digits, 16);
        out += code <= 0x10ffff ? String.fromCodePoint(code) : '';
        i += digits.length;
      }
    } else if (e >= '0' && e <= '7') {
      const digits = /^[0-7]{1,3}/.exec(body.slice(i))?.[0] ?? e;
      out += String.fromCharCode(Number.parseInt(digits, 8) & 0xff);
      i += digits.length - 1;
    } else if (e === 'c' && i + 1 < body.length) {
      out += String.fromCharCode(body.charCodeAt(++i) & 0x1f);
    } else {
      out += `\\${e}`;
    }
  }
  return out;
}

/** Every reading of a word the floor checks. */
export function readWord(word: ShellWord, env: WordEnv): WordReading[] {
  if (word.static) return withBraces(word.text, word.glob, false, word.brace);
  const decoded = decodeDynamic(word.text, env);
  const readings: WordReading[] = [];
  if (decoded.unset !== '') readings.push(...withBraces(decoded.unset, word.glob, false, word.brace));
  if (decoded.unknown) readings.push(...withBraces(decoded.pattern, true, true, word.brace));
  return readings;
}

/** Reads a string that is not a parsed word (a raw token, a string literal in code). */
export function readText(text: string, env: WordEnv): WordReading[] {
  if (!text.includes('$') && !text.includes('`')) return withBraces(text, /[*?[]/.test(text), false, false);
  return readWord({ raw: text, text, static: false, glob: /[*?[]/.test(text), brace: false, tilde: text.startsWith('~') }, env);
}

function withBraces(text: string, glob: boolean, namesOnly: boolean, braceFlag: boolean): WordReading[] {
  // The parser's brace flag is not always set (`{.e,x}nv`), so the text is looked at too.
  if (!braceFlag && !mayHaveBraces(text)) return [{ text, glob, namesOnly, dotOk: false }];
  const expanded = expandBraces(text);
  if (expanded !== undefined) return expanded.map((t) => ({ text: t, glob, namesOnly, dotOk: false }));
  // Too many words: each group stands in as `*` (which may start with a dot), or as
  // `*`, `**`, `*` segments when its words may span directories, and the whole is checked as a glob path.
  return [{ text: braceGlob(text), glob: true, namesOnly, dotOk: true, braceGlob: true }];
}

const OPTION_VALUE = /^-[A-Za-z](.+)$/;
const PIECE_SEPARATORS = /[=:,@]/;
const MAX_PIECES = 16;

/**
 * The path-like pieces of one reading: itself, an attached option value (`-f/etc/shadow`),
 * and its parts around `=`, `:`, `,` and `@` (`--file=.env`, `of=/dev/sda`, `host:~/.ssh/id_rsa`,
 * `HEAD:.env`, `-v /etc:/x`, curl's `@/etc/passwd`).
 */
export function piecesOf(text: string): string[] {
  const pieces = [text];
  const attached = OPTION_VALUE.exec(text)?.[1];
  if (attached !== undefined && !attached.startsWith('-')) pieces.push(attached);
  if (PIECE_SEPARATORS.test(text)) {
    for (const part of text.split(PIECE_SEPARATORS)) {
      if (part !== '' && part !== text && pieces.length < MAX_PIECES) pieces.push(part);
    }
  }
  return pieces;
}
