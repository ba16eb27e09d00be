/**
 * Just enough of bash's pathname expansion for the floor to ask "could this glob expand to a
 * protected name?" without a file system: `*`, `?` and `[...]` within one path segment, the
 * leading-dot rule, and brace expansion. Patterns are matched lower-cased, because the floor
 * compares names case-insensitively (see protected.ts).
 */

/** One element of a compiled glob segment. */
type GlobToken =
  | { readonly kind: 'char'; readonly char: string }
  | { readonly kind: 'any' }
  | { readonly kind: 'star' }
  | { readonly kind: 'class'; readonly negated: boolean; readonly chars: string; readonly ranges: readonly (readonly [string, string])[] };

/** A compiled glob segment. */
export type GlobSegment = readonly GlobToken[];

const GLOB_CHARS = /[*?[]/;

/** True when `segment` holds a character bash would treat as a glob. */
export function hasGlobChars(segment: string): boolean {
  return GLOB_CHARS.test(segment);
}

/** Compiles one path segment (no `/`) into tokens; an unclosed `[` is a literal. */
export function compileGlob(segment: string): GlobSegment {
  const tokens: GlobToken[] = [];
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charAt(i);
    if (c === '*') {
      // `**` within a segment behaves as `*`.
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
    } else if (c === '?') {
      tokens.push({ kind: 'any' });
    } else if (c === '[') {
      const parsed = parseClass(segment, i);
      if (parsed === undefined) tokens.push({ kind: 'char', char: c });
      else {
        tokens.push(parsed.token);
        i = parsed.end;
      }
    } else {
      tokens.push({ kind: 'char', char: c });
    }
  }
  return tokens;
}

function parseClass(segment: string, start: number): { token: GlobToken; end: number } | undefined {
  let i = start + 1;
  let negated = false;
  if (segment[i] === '!' || segment[i] === '^') {
    negated = true;
    i++;
  }
  let chars = '';
  const ranges: [string, string][] = [];
  let first = true;
  for (; i < segment.length; i++) {
    const c = segment.charAt(i);
    if (c === ']' && !first) return { token: { kind: 'class', negated, chars, ranges }, end: i };
    first = false;
    const next = segment[i + 2];
    if (segment[i + 1] === '-' && next !== undefined && next !== ']') {
      ranges.push([c, next]);
      i += 2;
    } else {
      chars += c;
    }
  }
  return undefined;
}

function classMatches(token: Extract<GlobToken, { kind: 'class' }>, c: string): boolean {
  let inside = token.chars.includes(c);
  if (!inside) for (const [lo, hi] of token.ranges) if (c >= lo && c <= hi) inside = true;
  return inside !== token.negated;
}

function stepMatches(token: GlobToken, c: string): boolean {
  switch (token.kind) {
    case 'char':
      return token.char === c;
    case 'any':
      return true;
    case 'class':
      return classMatches(token, c);
    case 'star':
      return true;
  }
}

/**
 * Bash's leading-dot rule: `*`, `?` and classes never match a leading `.` unless dotglob is on.
 * A class that lists `.` is let through, which errs toward matching.
 */
function firstMayBeDot(tokens: GlobSegment, dotOk: boolean): boolean {
  if (dotOk) return true;
  const first = tokens[0];
  if (first === undefined) return false;
  if (first.kind === 'char') return first.char === '.';
  return first.kind === 'class' && !first.negated && classMatches(first, '.');
}

/**
 * Runs `text` through the token automaton starting from `start` states. Returns the live
 * states after the last character; an empty array means no match is possible.
 */
function run(tokens: GlobSegment, text: string): boolean[] {
  let states = closure(tokens, [0]);
  for (let i = 0; i < text.length && states.some(Boolean); i++) {
    const c = text.charAt(i);
    const next: number[] = [];
    states.forEach((live, at) => {
      if (!live) return;
      const token = tokens[at];
      if (token === undefined || !stepMatches(token, c)) return;
      next.push(token.kind === 'star' ? at : at + 1);
    });
    states = closure(tokens, next);
  }
  return states;
}

function closure(tokens: GlobSegment, from: readonly number[]): boolean[] {
  const states = new Array<boolean>(tokens.length + 1).fill(false);
  for (let at of from) {
    states[at] = true;
    while (tokens[at]?.kind === 'star') states[++at] = true;
  }
  return states;
}

/** True when the glob segment matches `name` exactly (both lower-case). */
export function globMatches(tokens: GlobSegment, name: string, dotOk: boolean): boolean {
  if (name.startsWith('.') && !firstMayBeDot(tokens, dotOk)) return false;
  return run(tokens, name)[tokens.length] === true;
}

/** True when the glob segment can match some name that starts with `prefix`. */
export function globMatchesSomePrefixed(tokens: GlobSegment, prefix: string, dotOk: boolean): boolean {
  if (prefix.startsWith('.') && !firstMayBeDot(tokens, dotOk)) return false;
  return run(tokens, prefix).some(Boolean);
}

/**
 * True when the glob segment can match some name `stem + suffix` with a non-empty stem.
 * Works on the reversed pattern: after the reversed suffix, some token must remain.
 */
export function globMatchesSomeSuffixed(tokens: GlobSegment, suffix: string): boolean {
  const reversed = [...tokens].reverse();
  let reversedSuffix = '';
  for (let i = suffix.length - 1; i >= 0; i--) reversedSuffix += suffix.charAt(i);
  const states = run(reversed, reversedSuffix);
  return states.some((live, at) => live && at < reversed.length);
}

/** Text before the first `*`, and after the last one, of a compiled segment's source. */
export function literalEnds(segment: string): { head: string; tail: string } {
  const first = segment.indexOf('*');
  if (first === -1) return { head: segment, tail: segment };
  return { head: segment.slice(0, first), tail: segment.slice(segment.lastIndexOf('*') + 1) };
}

/** At most this many words come out of one brace expansion; more gives up (see expandBraces). */
const MAX_BRACE_EXPANSIONS = 64;

const BRACE_HINT = /\{[^{}]*(?:,|\.\.)[^{}]*\}/;

/** True when `text` has something bash would brace-expand. */
export function mayHaveBraces(text: string): boolean {
  return text.includes('{') && BRACE_HINT.test(text);
}

/**
 * Bash brace expansion (`a{b,c}d`, `{a..e}`, `{1..3}`, nested). Returns undefined when the
 * expansion would exceed MAX_BRACE_EXPANSIONS words, so the caller can fall back to a glob.
 */
export function expandBraces(text: string): string[] | undefined {
  const out: string[] = [];
  return expandInto(text, out) ? out : undefined;
}

function expandInto(text: string, out: string[]): boolean {
  const group = findGroup(text);
  if (group === undefined) {
    if (out.length >= MAX_BRACE_EXPANSIONS) return false;
    out.push(text);
    return true;
  }
  const before = text.slice(0, group.open);
  const after = text.slice(group.close + 1);
  for (const alternative of group.alternatives) {
    if (!expandInto(before + alternative + after, out)) return false;
  }
  return true;
}

/** The first brace group with a comma or a sequence, with its alternatives. */
function findGroup(text: string): { open: number; close: number; alternatives: string[] } | undefined {
  for (let open = text.indexOf('{'); open !== -1; open = text.indexOf('{', open + 1)) {
    let depth = 0;
    const commas: number[] = [];
    for (let i = open; i < text.length; i++) {
      const c = text[i];
      if (c === '{') depth++;
      else if (c === '}') {
        depth--;
        if (depth === 0) {
          const inner = text.slice(open + 1, i);
          if (commas.length > 0) {
            const alternatives: string[] = [];
            let from = open + 1;
            for (const comma of commas) {
              alternatives.push(text.slice(from, comma));
              from = comma + 1;
            }
            alternatives.push(text.slice(from, i));
            return { open, close: i, alternatives };
          }
          const sequence = expandSequence(inner);
          if (sequence !== undefined) return { open, close: i, alternatives: sequence };
          break;
        }
      } else if (c === ',' && depth === 1) commas.push(i);
    }
  }
  return undefined;
}

const NUMBER_SEQUENCE = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/;
const CHAR_SEQUENCE = /^([a-zA-Z])\.\.([a-zA-Z])(?:\.\.(-?\d+))?$/;

function expandSequence(inner: string): string[] | undefined {
  const numbers = NUMBER_SEQUENCE.exec(inner);
  const chars = numbers === null ? CHAR_SEQUENCE.exec(inner) : null;
  const match = numbers ?? chars;
  if (match === null) return undefined;
  const from = numbers !== null ? Number(match[1]) : (match[1] ?? 'a').charCodeAt(0);
  const to = numbers !== null ? Number(match[2]) : (match[2] ?? 'a').charCodeAt(0);
  const step = Math.max(1, Math.abs(Number(match[3] ?? '1')));
  const count = Math.floor(Math.abs(to - from) / step) + 1;
  // One word more than allowed makes the whole expansion give up, as intended.
  const items: string[] = [];
  const direction = to >= from ? 1 : -1;
  for (let i = 0, v = from; i < Math.min(count, MAX_BRACE_EXPANSIONS + 1); i++, v += step * direction) {
    items.push(numbers !== null ? String(v) : String.fromCharCode(v));
  }
  return items;
}
