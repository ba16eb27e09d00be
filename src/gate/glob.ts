/**
 * Compiles rule globs into anchored regular expressions, once, by kind of target
 * (DESIGN.md §4.3):
 * - command: `*` matches any run of characters, `/` and spaces included; a trailing ` *`
 *   also matches the bare program (`git *` matches `git`).
 * - path: `*` and `?` stay within one segment, `**` crosses segments, dotfiles match;
 *   `~` is the receiving user's home; a relative glob matches at any depth (`.env*`).
 * - hostname: `*` matches anything; compared case-insensitively.
 */
import { collapse } from '../../floor/paths.js';
import { findClassEnd } from './rule-grammar.js';
import type { TargetKind } from './types.js';

export interface CompiledGlob {
  readonly source: string;
  readonly regex: RegExp;
  /** The glob's unescaped text when it has no wildcard at all. */
  readonly literal: string | undefined;
  /**
   * For commands: the program when the glob spells it literally. For paths: the literal
   * leading segments of an absolute glob. Used to index rules; empty when nothing is literal.
   */
  readonly anchor: readonly string[];
}

export interface GlobOptions {
  readonly home: string;
}

const REGEX_SPECIAL = /[\\^$.*+?()[\]{}|/]/g;

function escapeRegex(text: string): string {
  return text.replace(REGEX_SPECIAL, '\\$&');
}

interface Token {
  readonly kind: 'text' | 'star' | 'globstar' | 'any' | 'class';
  readonly value: string;
}

function tokenize(glob: string): Token[] {
  const tokens: Token[] = [];
  let text = '';
  const flush = (): void => {
    if (text.length > 0) tokens.push({ kind: 'text', value: text });
    text = '';
  };
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i] as string;
    if (c === '\\' && i + 1 < glob.length) {
      text += glob[++i] ?? '';
    } else if (c === '*') {
      flush();
      if (glob[i + 1] === '*') {
        while (glob[i + 1] === '*') i++;
        tokens.push({ kind: 'globstar', value: '**' });
      } else {
        tokens.push({ kind: 'star', value: '*' });
      }
    } else if (c === '?') {
      flush();
      tokens.push({ kind: 'any', value: '?' });
    } else if (c === '[') {
      const close = findClassEnd(glob, i);
      if (close === -1) {
        text += c;
      } else {
        flush();
        tokens.push({ kind: 'class', value: glob.slice(i, close + 1) });
        i = close;
      }
    } else {
      text += c;
    }
  }
  flush();
  return tokens;
}

function classToRegex(cls: string, excludeSlash: boolean): string {
  let body = cls.slice(1, -1);
  let negate = false;
  if (body.startsWith('!') || body.startsWith('^')) {
    negate = true;
    body = body.slice(1);
  }
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as string;
    if (c === '\\' && i + 1 < body.length) out += escapeRegex(body[++i] as string);
    else if (c === '-' && out.length > 0 && i + 1 < body.length) out += '-';
    else out += escapeRegex(c);
  }
  if (negate) return `[^${out}${excludeSlash ? '\\/' : ''}]`;
  return excludeSlash ? `(?!\\/)[${out}]` : `[${out}]`;
}

function literalOf(tokens: readonly Token[]): string | undefined {
  if (tokens.some((t) => t.kind !== 'text')) return undefined;
  return tokens.map((t) => t.value).join('');
}

function compileCommand(glob: string): CompiledGlob {
  let tokens = tokenize(glob);
  // `git *` also matches a bare `git`.
  let optionalTail = false;
  const last = tokens[tokens.length - 1];
  const beforeLast = tokens[tokens.length - 2];
  if (last !== undefined && (last.kind === 'star' || last.kind === 'globstar') && beforeLast?.kind === 'text' && beforeLast.value.endsWith(' ')) {
    optionalTail = true;
    tokens = [...tokens.slice(0, -2), { kind: 'text', value: beforeLast.value.slice(0, -1) }];
  }
  let body = '';
  for (const token of tokens) {
    if (token.kind === 'text') body += escapeRegex(token.value);
    else if (token.kind === 'star' || token.kind === 'globstar') body += '[\\s\\S]*';
    else if (token.kind === 'any') body += '[\\s\\S]';
    else body += classToRegex(token.value, false);
  }
  if (optionalTail) body += '(?: [\\s\\S]*)?';
  const first = tokens[0];
  const anchor: string[] = [];
  if (first?.kind === 'text') {
    const space = first.value.indexOf(' ');
    if (space > 0) anchor.push(first.value.slice(0, space));
    else if (tokens.length === 1 && !optionalTail) anchor.push(first.value);
    else if (tokens.length === 1 && optionalTail) anchor.push(first.value);
  }
  const literal = optionalTail ? undefined : literalOf(tokens);
  return Object.freeze({ source: glob, regex: new RegExp(`^${body}$`), literal, anchor: Object.freeze(anchor) });
}

function compilePath(glob: string, options: GlobOptions): CompiledGlob {
  let expanded = glob;
  if (expanded === '~' || expanded.startsWith('~/')) expanded = options.home + expanded.slice(1);
  const absolute = expanded.startsWith('/');
  if (absolute) expanded = collapse(expanded);
  else expanded = expanded.replace(/^(\.\/)+/, '');
  const segments = expanded.split('/');
  if (absolute) segments.shift();
  const anchor: string[] = [];
  let anchoring = absolute;
  // Targets are absolute, so every segment is written as `/segment`; a relative glob may
  // start at any depth.
  let body = absolute ? '' : '(?:\\/.*)?';
  for (const segment of segments) {
    if (segment === '**') {
      // `/srv/**` covers `/srv` itself and everything below it.
      anchoring = false;
      body += '(?:\\/.*)?';
      continue;
    }
    const tokens = tokenize(segment);
    const literal = literalOf(tokens);
    if (anchoring && literal !== undefined) anchor.push(literal);
    else anchoring = false;
    let part = '';
    for (const token of tokens) {
      if (token.kind === 'text') part += escapeRegex(token.value);
      else if (token.kind === 'star') part += '[^\\/]*';
      else if (token.kind === 'globstar') part += '.*';
      else if (token.kind === 'any') part += '[^\\/]';
      else part += classToRegex(token.value, true);
    }
    body += '\\/' + part;
  }
  const literal = absolute && anchoring ? `/${anchor.join('/')}` : undefined;
  return Object.freeze({ source: glob, regex: new RegExp(`^${body}$`), literal, anchor: Object.freeze(absolute ? anchor : []) });
}

function compileHostname(glob: string): CompiledGlob {
  const tokens = tokenize(glob.toLowerCase());
  let body = '';
  for (const token of tokens) {
    if (token.kind === 'text') body += escapeRegex(token.value);
    else if (token.kind === 'star' || token.kind === 'globstar') body += '.*';
    else if (token.kind === 'any') body += '.';
    else body += classToRegex(token.value, false);
  }
  const literal = literalOf(tokens);
  return Object.freeze({ source: glob, regex: new RegExp(`^${body}$`, 'i'), literal, anchor: Object.freeze(literal === undefined ? [] : [literal]) });
}

/** Compiles a rule's glob for the kind of target its tool has. */
export function compileGlob(glob: string, kind: TargetKind, options: GlobOptions): CompiledGlob {
  switch (kind) {
    case 'command':
      return compileCommand(glob);
    case 'path':
      return compilePath(glob, options);
    case 'hostname':
      return compileHostname(glob);
  }
}
