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
  | { readonly kind: 'class'; readonly negated: boolean; readonly chars: ReadonlySet<string>; readonly ranges: readonly (readonly [string, string])[] };

/** A compiled glob segment. */
export type GlobSegment = readonly GlobToken[];

const GLOB_CHARS = /[*?[]/;

/** True when `segment` holds a character bash would treat as a glob. */
export function hasGlobChars(segment: string): boolean {
  return GLOB_CHARS.test(segment);
}

/** A class that matches every character: stands in for `[[:alpha:]]` and other POSIX forms. */
const ANY_CLASS: GlobToken = { kind: 'class', negated: false, chars: new Set(), ranges: [['\u0000', '\uffff']] };
const STAR: GlobToken = { kind: 'star' };
/** A class with more ranges than this is read as one range from the lowest to the highest bound. */
const MAX_RANGES = 32;

/**
 * Compiles one path segment (no `/`) into tokens; an unclosed `[` is a literal. Linear in the
 * segment: a class closes at the first `]` after its first character, found by a search that
 * only moves forward. A class holding a POSIX form (`[:alpha:]`, `[=a=]`, `[.a.]`), whose `]`
 * bash reads differently, becomes "any character" followed by `*` for the rest of the segment:
 * a pattern that matches at least everything bash's would.
 */
export function compileGlob(segment: string): GlobSegment {
  const tokens: GlobToken[] = [];
  let close = -2;
  // The first `]` at or after `from`; `from` only grows, so the whole scan is linear.
  const nextClose = (from: number): number => {
    if (close === -1 || close >= from) return close;
    close = segment.indexOf(']', from);
    return close;
  };
  for (let i = 0; i < segment.length; i++) {
    const c = segment.charAt(i);
    if (c === '*') {
      // `**` within a segment behaves as `*`.
      if (tokens.at(-1)?.kind !== 'star') tokens.push(STAR);
      continue;
    }
    if (c === '?') {
      tokens.push({ kind: 'any' });
      continue;
    }
    if (c !== '[') {
      tokens.push({ kind: 'char', char: c });
      continue;
    }
    const negated = segment[i + 1] === '!' || segment[i + 1] === '^';
    const first = i + 1 + (negated ? 1 : 0);
    const end = first < segment.length ? nextClose(first + 1) : -1;
    if (end === -1) {
      tokens.push({ kind: 'char', char: c });
      continue;
    }
    const body = segment.slice(first, end);
    if (body.includes('[:') || body.includes('[=') || body.includes('[.')) {
      tokens.push(ANY_CLASS, STAR);
      return tokens;
    }
    tokens.push(classToken(body, negated));
    i = end;
  }
  return tokens;
}

/** The class of a bracket body (between `[` or `[!` and the closing `]`). */
function classToken(body: string, negated: boolean): GlobToken {
  const chars = new Set<string>();
  let ranges: [string, string][] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body.charAt(i);
    if (body[i + 1] === '-' && i + 2 < body.length) {
      ranges.push([c, body.charAt(i + 2)]);
      i += 2;
    } else {
      chars.add(c);
    }
  }
  if (ranges.length > MAX_RANGES) {
    let lo = '\uffff';
    let hi = '\u0000';
    for (const [a, b] of ranges) {
      if (a < lo) lo = a;
      if (b > hi) hi = b;
    }
    // Negated, a wider range would match less; the floor would rather match more.
    ranges = negated ? [] : [[lo, hi]];
  }
  return { kind: 'class', negated, chars, ranges };
}

function classMatches(token: Extract<GlobToken, { kind: 'class' }>, c: string): boolean {
  let inside = token.chars.has(c);
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
 * Runs `text` through the token automaton from its start. Returns the live states after the
 * last character; an empty set means no match is possible. The states are kept sparse: after
 * k characters only the first 2k + 2 tokens can be live, so a run costs O(k²) whatever the
 * length of the pattern.
 */
function run(tokens: GlobSegment, text: string): ReadonlySet<number> {
  let states = closure(tokens, [0]);
  for (let i = 0; i < text.length && states.size > 0; i++) {
    const c = text.charAt(i);
    const next: number[] = [];
    for (const at of states) {
      const token = tokens[at];
      if (token === undefined || !stepMatches(token, c)) continue;
      next.push(token.kind === 'star' ? at : at + 1);
    }
    states = closure(tokens, next);
  }
  return states;
}

function closure(tokens: GlobSegment, from: readonly number[]): Set<number> {
  const states = new Set<number>();
  for (let at of from) {
    states.add(at);
    while (tokens[at]?.kind === 'star') states.add(++at);
  }
  return states;
}

/** True when the glob segment matches `name` exactly (both lower-case). */
export function globMatches(tokens: GlobSegment, name: string, dotOk: boolean): boolean {
  if (name.startsWith('.') && !firstMayBeDot(tokens, dotOk)) return false;
  // Every token but `*` takes exactly one character.
  if (tokens.length > name.length * 2 + 2 && countFixed(tokens, name.length) > name.length) return false;
  return run(tokens, name).has(tokens.length);
}

/** How many tokens other than `*` there are, counting no further than `limit` + 1. */
function countFixed(tokens: GlobSegment, limit: number): number {
  let count = 0;
  for (const token of tokens) if (token.kind !== 'star' && ++count > limit) break;
  return count;
}

/** True when the glob segment can match some name that starts with `prefix`. */
export function globMatchesSomePrefixed(tokens: GlobSegment, prefix: string, dotOk: boolean): boolean {
  if (prefix.startsWith('.') && !firstMayBeDot(tokens, dotOk)) return false;
  return run(tokens, prefix).size > 0;
}

/**
 * True when the glob segment can match some name `stem + suffix` with a non-empty stem.
 * Works on the reversed pattern: after the reversed suffix, some token must remain.
 */
export function globMatchesSomeSuffixed(tokens: GlobSegment, suffix: string): boolean {
  const reversed = [...tokens].reverse();
  let reversedSuffix = '';
  for (let i = suffix.length - 1; i >= 0; i--) reversedSuffix += suffix.charAt(i);
  for (const at of run(reversed, reversedSuffix)) if (at < reversed.length) return true;
  return false;
}

const DIGITS = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** True when the glob segment can match some non-empty run of digits (a pid). */
export function globMatchesSomeDigits(tokens: GlobSegment): boolean {
  if (tokens.length === 0) return false;
  return tokens.every((token) => token.kind === 'star' || token.kind === 'any' || (token.kind === 'char' ? DIGITS.includes(token.char) : DIGITS.some((d) => classMatches(token, d))));
}

/** Text before the first `*`, and after the last one, of a compiled segment's source. */
export function literalEnds(segment: string): { head: string; tail: string } {
  const first = segment.indexOf('*');
  if (first === -1) return { head: segment, tail: segment };
  return { head: segment.slice(0, first), tail: segment.slice(segment.lastIndexOf('*') + 1) };
}

/** At most this many words come out of one brace expansion; more gives up (see expandBraces). */
const MAX_BRACE_EXPANSIONS = 64;
/** Characters of intermediate text one expansion may build before it gives up. */
const MAX_BRACE_WORK = 1 << 20;

/** True when `text` has something bash would brace-expand: a `{`, then `,` or `..`, then `}`, with no brace between. */
export function mayHaveBraces(text: string): boolean {
  let open = text.indexOf('{');
  if (open === -1) return false;
  let separator = false;
  for (let i = open + 1; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '{') {
      open = i;
      separator = false;
    } else if (c === '}') {
      if (open !== -1 && separator) return true;
      open = -1;
    } else if (open !== -1 && (c === ',' || (c === '.' && text[i + 1] === '.'))) {
      separator = true;
    }
  }
  return false;
}

/**
 * Bash brace expansion (`a{b,c}d`, `{a..e}`, `{1..3}`, nested), without recursion. Returns
 * undefined when the expansion would exceed MAX_BRACE_EXPANSIONS words or MAX_BRACE_WORK
 * characters of intermediate text, so the caller can fall back to a glob (braceGlob).
 */
export function expandBraces(text: string): string[] | undefined {
  const out: string[] = [];
  // Depth first, last alternative pushed first, so that words come out in bash's order.
  const pending: string[] = [text];
  let work = text.length;
  while (pending.length > 0) {
    const current = pending.pop() as string;
    const group = findGroup(current);
    if (group === undefined) {
      out.push(current);
      continue;
    }
    // Every alternative gives at least one word.
    if (out.length + pending.length + group.alternatives.length > MAX_BRACE_EXPANSIONS) return undefined;
    const before = current.slice(0, group.open);
    const after = current.slice(group.close + 1);
    for (let k = group.alternatives.length - 1; k >= 0; k--) {
      const next = before + (group.alternatives[k] as string) + after;
      work += next.length;
      if (work > MAX_BRACE_WORK) return undefined;
      pending.push(next);
    }
  }
  return out;
}

/**
 * The leftmost brace group with a comma or a sequence, with its alternatives, in one pass:
 * braces are paired with a stack, each frame keeping the commas directly inside it.
 */
function findGroup(text: string): { open: number; close: number; alternatives: string[] } | undefined {
  const stack: { open: number; commas: number[]; nested: boolean }[] = [];
  let best: { open: number; close: number; commas: number[]; sequence: string[] | undefined } | undefined;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (c === '{') {
      const parent = stack.at(-1);
      if (parent !== undefined) parent.nested = true;
      // Nothing opened after the best group so far can come before it.
      if (best !== undefined && stack.length === 0) break;
      stack.push({ open: i, commas: [], nested: false });
    } else if (c === ',') {
      stack.at(-1)?.commas.push(i);
    } else if (c === '}') {
      const frame = stack.pop();
      if (frame === undefined) continue;
      if (best !== undefined && best.open < frame.open) continue;
      if (frame.commas.length > 0) best = { open: frame.open, close: i, commas: frame.commas, sequence: undefined };
      else if (!frame.nested) {
        const sequence = expandSequence(text.slice(frame.open + 1, i));
        if (sequence !== undefined) best = { open: frame.open, close: i, commas: [], sequence };
      }
    }
  }
  if (best === undefined) return undefined;
  if (best.sequence !== undefined) return { open: best.open, close: best.close, alternatives: best.sequence };
  const alternatives: string[] = [];
  let from = best.open + 1;
  for (const comma of best.commas) {
    alternatives.push(text.slice(from, comma));
    from = comma + 1;
  }
  alternatives.push(text.slice(from, best.close));
  return { open: best.open, close: best.close, alternatives };
}

/**
 * A glob that matches at least every word the brace expansion of `text` gives, for when it is
 * too large to expand: each balanced `{…}` becomes `*`, or a run of segments with a `**`
 * segment in the middle when it holds a `/` (its words may span directories). Linear: each character is written once and dropped at most once.
 */
export function braceGlob(text: string): string {
  const out: string[] = [];
  const marks: { at: number; slash: boolean }[] = [];
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    const top = marks.at(-1);
    if (c === '{') {
      marks.push({ at: out.length, slash: false });
      out.push(c);
    } else if (c === '}' && top !== undefined) {
      marks.pop();
      out.length = top.at;
      const glob = top.slash ? '*/**/*' : '*';
      if (out.at(-1) !== glob) out.push(glob);
      const parent = marks.at(-1);
      if (parent !== undefined && top.slash) parent.slash = true;
    } else {
      if (c === '/' && top !== undefined) top.slash = true;
      out.push(c);
    }
  }
  return out.join('');
}

const NUMBER_SEQUENCE = /^(-?\d+)\.\.(-?\d+)(?:\.\.(-?\d+))?$/;
const CHAR_SEQUENCE = /^([a-zA-Z])\.\.([a-zA-Z])(?:\.\.(-?\d+))?$/;

function expandSequence(inner: string): string[] | undefined {
  // A sequence is short; a long body is not worth a regular expression.
  if (inner.length > 64) return undefined;
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
