/**
 * Splits a command line into simple commands with a real bash parser (tree-sitter-bash), so
 * rules match argv, never the raw string (DESIGN.md §4.3). Everything the parser cannot see
 * through is recorded as an opaque reason; the gate never lets a wildcard rule allow such a
 * line. Commands found inside substitutions, subshells, `eval`, `bash -c` code and wrappers
 * (`sudo`, `timeout`, ...) are kept as `nested` so the floor and deny rules still see them.
 */
import { createRequire } from 'node:module';
import { Language, Parser, type Tree } from 'web-tree-sitter';
import type { OpaqueReason, ShellAnalysis, ShellRedirect, ShellWord, SimpleCommand } from '../shared/types.js';

/** Lines longer than this are not parsed at all: they are opaque and only the floor's text checks run. */
export const MAX_PARSED_LINE = 64 * 1024;
/** How deep `bash -c "bash -c ..."` and `eval` are followed before giving up as too complex. */
const MAX_CODE_DEPTH = 4;
/** How many wrappers (`sudo env nice timeout ...`) are unwrapped before giving up as too complex. */
const MAX_WRAPPER_DEPTH = 16;
/** How deep the syntax tree is walked before giving up as too complex. */
const MAX_TREE_DEPTH = 200;

/** A parser ready for use; `parse` is synchronous and safe to call on any input. */
export interface ShellParser {
  parse(line: string): ShellAnalysis;
}

const SHELLS = new Set(['sh', 'bash', 'zsh', 'dash', 'ksh', 'mksh', 'ash', 'fish', 'csh', 'tcsh', 'yash', 'posh', 'rbash']);

/** Interpreters whose code-in-an-argument flag hides a program from rules. */
const CODE_FLAGS: ReadonlyMap<string, readonly string[]> = new Map([
  ['python', ['-c']],
  ['perl', ['-e', '-E']],
  ['ruby', ['-e']],
  ['node', ['-e', '--eval', '-p', '--print']],
  ['nodejs', ['-e', '--eval', '-p', '--print']],
  ['deno', ['eval']],
  ['bun', ['-e', '--eval']],
  ['php', ['-r']],
  ['lua', ['-e']],
  ['luajit', ['-e']],
  ['tclsh', []],
  ['Rscript', ['-e']],
  ['osascript', ['-e']],
  ['pwsh', ['-c', '-Command', '-command']],
  ['powershell', ['-c', '-Command', '-command']],
]);

/** Programs that run `-c CODE` through a shell, and otherwise wrap a command. */
const SHELL_CODE_WRAPPERS = new Set(['su', 'runuser', 'flock', 'script']);

/** Programs whose first operand is a program text (awk's, sed's `e` command). */
const PROGRAM_TEXT_TOOLS = new Set(['awk', 'gawk', 'mawk', 'nawk']);

/** The program a path names: `/usr/bin/rm` → `rm`. */
export function programBase(program: string): string {
  const slash = program.lastIndexOf('/');
  return slash === -1 ? program : program.slice(slash + 1);
}

/** An interpreter's name without its version: `python3.11` → `python`, `perl5` → `perl`. */
export function interpreterName(program: string): string {
  return programBase(program).replace(/(?<=[a-z])[\d.]+$/, '');
}

/** Creates the parser: loads the WebAssembly bash grammar once. */
export async function createShellParser(): Promise<ShellParser> {
  await Parser.init();
  const require = createRequire(import.meta.url);
  const language = await Language.load(require.resolve('tree-sitter-bash/tree-sitter-bash.wasm'));
  const parser = new Parser();
  parser.setLanguage(language);
  const grammar: GrammarTables = {
    types: language.types.map((type, id) => ({ type, named: language.nodeTypeIsNamed(id) })),
    fields: language.fields,
  };
  return { parse: (line) => analyze(parser, grammar, line, 0) };
}

/** Type names, namedness and field names by id, read once, so the tree copy asks less of WebAssembly. */
interface GrammarTables {
  readonly types: readonly { readonly type: string; readonly named: boolean }[];
  readonly fields: readonly (string | null)[];
}

/**
 * One syntax node copied out of WebAssembly memory. Reading a tree-sitter node's properties
 * crosses into WebAssembly on every access; copying the tree once with a cursor and walking
 * plain objects makes the walk several times cheaper. The members mirror web-tree-sitter's Node.
 */
class Node {
  readonly children: Node[] = [];
  constructor(
    readonly type: string,
    readonly isNamed: boolean,
    readonly startIndex: number,
    readonly endIndex: number,
    readonly fieldName: string | null,
    private readonly source: string,
  ) {}

  get isError(): boolean {
    return this.type === 'ERROR';
  }

  /** Missing nodes (inserted by error recovery) also set the tree's error flag, which the caller checks. */
  get isMissing(): boolean {
    return false;
  }

  get text(): string {
    return this.source.slice(this.startIndex, this.endIndex);
  }

  get namedChildren(): Node[] {
    return this.children.filter((c) => c.isNamed);
  }

  get firstNamedChild(): Node | null {
    return this.children.find((c) => c.isNamed) ?? null;
  }

  childForFieldName(field: string): Node | null {
    return this.children.find((c) => c.fieldName === field) ?? null;
  }

  childrenForFieldName(field: string): Node[] {
    return this.children.filter((c) => c.fieldName === field);
  }
}

function toPlainTree(tree: Tree, grammar: GrammarTables, source: string): Node {
  const cursor = tree.walk();
  const create = (field: string | null): Node => {
    const type = grammar.types[cursor.nodeTypeId] ?? { type: 'ERROR', named: true };
    return new Node(type.type, type.named, cursor.startIndex, cursor.endIndex, field, source);
  };
  try {
    const root = create(null);
    const stack: Node[] = [root];
    // Depth-first copy; the stack mirrors the cursor's path from the root.
    if (!cursor.gotoFirstChild()) return root;
    for (;;) {
      const fieldId = cursor.currentFieldId;
      const node = create(fieldId === 0 ? null : (grammar.fields[fieldId] ?? null));
      (stack[stack.length - 1] as Node).children.push(node);
      if (cursor.gotoFirstChild()) {
        stack.push(node);
        continue;
      }
      while (!cursor.gotoNextSibling()) {
        if (!cursor.gotoParent() || stack.length <= 1) return root;
        stack.pop();
      }
    }
  } finally {
    cursor.delete();
  }
}

interface Collector {
  readonly commands: SimpleCommand[];
  readonly opaque: Set<OpaqueReason>;
  readonly parser: Parser;
  readonly grammar: GrammarTables;
  readonly codeDepth: number;
}

interface WalkContext {
  readonly nested: boolean;
  readonly pipedInto: boolean;
  readonly redirects: readonly ShellRedirect[];
  readonly depth: number;
}

const TOP: WalkContext = { nested: false, pipedInto: false, redirects: [], depth: 0 };

function analyze(parser: Parser, grammar: GrammarTables, line: string, codeDepth: number): ShellAnalysis {
  const collector: Collector = { commands: [], opaque: new Set(), parser, grammar, codeDepth };
  // NUL and CR, and form feed and vertical tab, which tree-sitter takes for blanks and bash
  // does not (`git status \f#; rm x` runs rm in bash, but parses as a comment here).
  // eslint-disable-next-line no-control-regex -- these characters are what is being refused
  const controlCharacters = /[\u0000\r\f\v]/.test(line);
  if (controlCharacters) collector.opaque.add('control_character');
  if (/\\\r?\n/.test(line)) collector.opaque.add('line_continuation');
  if (line.length > MAX_PARSED_LINE) {
    collector.opaque.add('too_complex');
    return freeze(line, collector);
  }
  const tree = parser.parse(line);
  if (tree === null) {
    collector.opaque.add('unparseable');
    return freeze(line, collector);
  }
  try {
    const root = toPlainTree(tree, grammar, line);
    walkStatements(root, TOP, collector);
    const hasError = tree.rootNode.hasError;
    if (hasError) collector.opaque.add('unparseable');
    if (hasError || controlCharacters) {
      // Error recovery can glue commands together (`git ==; rm` parses as one git command),
      // so deny rules and the floor also get a naive split of the raw text.
      for (const { argv, piped } of shadowSplit(line)) {
        // `FOO=1 rm x` and `sudo rm x` name rm too: leading assignments are dropped and
        // wrappers unwrapped, as for a parsed command.
        const assignments = leadingAssignments(argv);
        const words = argv.slice(assignments.length);
        if (words.length === 0) continue;
        const ctx = { ...TOP, nested: true, pipedInto: piped };
        const command = freezeCommand(words, assignments, ctx, ['unparseable']);
        collector.commands.push(command);
        followCode(command, ctx, collector);
      }
    }
  } finally {
    tree.delete();
  }
  return freeze(line, collector);
}

function freeze(line: string, collector: Collector): ShellAnalysis {
  return Object.freeze({
    line,
    commands: Object.freeze(collector.commands),
    opaque: Object.freeze([...collector.opaque]),
  });
}

function markOpaque(ctx: WalkContext, collector: Collector, reason: OpaqueReason): WalkContext {
  collector.opaque.add(reason);
  return { ...ctx, nested: true };
}

/** Walks a node that holds statements (program, list, pipeline, compound bodies, ...). */
function walkStatements(node: Node, ctx: WalkContext, collector: Collector): void {
  if (ctx.depth > MAX_TREE_DEPTH) {
    collector.opaque.add('too_complex');
    return;
  }
  const next: WalkContext = { ...ctx, depth: ctx.depth + 1 };
  for (const child of node.children) {
    if (!child.isNamed) {
      // `&` between statements backgrounds the one before it.
      if (child.type === '&') collector.opaque.add('background');
      continue;
    }
    walkStatement(child, next, collector);
  }
}

function walkStatement(node: Node, ctx: WalkContext, collector: Collector): void {
  switch (node.type) {
    case 'comment':
      return;
    case 'command':
      collectCommand(node, ctx, collector);
      return;
    case 'list':
    case 'program':
      walkStatements(node, ctx, collector);
      return;
    case 'pipeline':
      walkPipeline(node, ctx, collector);
      return;
    case 'redirected_statement':
      walkRedirected(node, ctx, collector);
      return;
    case 'subshell':
    case 'compound_statement':
      walkStatements(node, markOpaque(ctx, collector, 'subshell'), collector);
      return;
    case 'function_definition':
      walkStatements(node, markOpaque(ctx, collector, 'function_definition'), collector);
      return;
    case 'for_statement':
    case 'case_statement':
    case 'case_item':
      walkStatements(node, markOpaque(ctx, collector, 'control_flow'), collector);
      collectControlWords(node, ctx, collector);
      return;
    case 'if_statement':
    case 'elif_clause':
    case 'else_clause':
    case 'while_statement':
    case 'c_style_for_statement':
    case 'do_group':
    case 'negated_command':
    case 'test_command':
      walkStatements(node, markOpaque(ctx, collector, 'control_flow'), collector);
      walkWordsIn(node, ctx, collector);
      collectControlWords(node, ctx, collector);
      return;
    case 'variable_assignment':
    case 'variable_assignments':
    case 'declaration_command':
    case 'unset_command':
      // Setting PATH, IFS or any variable changes what later commands mean.
      collector.opaque.add('env_prefix');
      collectDeclaration(node, ctx, collector);
      return;
    default:
      // Anything this walker does not know is never allowed; commands inside are still seen.
      collector.opaque.add(node.isError || node.isMissing ? 'unparseable' : 'too_complex');
      walkStatements(node, { ...ctx, nested: true }, collector);
      walkWordsIn(node, { ...ctx, nested: true }, collector);
  }
}

function walkPipeline(node: Node, ctx: WalkContext, collector: Collector): void {
  let first = true;
  for (const child of node.children) {
    if (!child.isNamed) {
      if (child.type === '&') collector.opaque.add('background');
      continue;
    }
    walkStatement(child, { ...ctx, pipedInto: ctx.pipedInto || !first, depth: ctx.depth + 1 }, collector);
    first = false;
  }
}

function walkRedirected(node: Node, ctx: WalkContext, collector: Collector): void {
  const redirects: ShellRedirect[] = [];
  for (const child of node.childrenForFieldName('redirect')) {
    redirects.push(...redirectsOf(child, ctx, collector));
  }
  const body = node.childForFieldName('body');
  const inner: WalkContext = { ...ctx, redirects: [...ctx.redirects, ...redirects], depth: ctx.depth + 1 };
  if (body === null) {
    // A redirect with no command (`> file`) still truncates the file: keep it visible to the floor.
    collector.opaque.add('redirect');
    collector.commands.push(freezeCommand([literalWord(':')], [], inner, ['redirect']));
    return;
  }
  walkStatement(body, inner, collector);
}

/**
 * The redirects one redirect node stands for. tree-sitter-bash hangs the rest of the line
 * after a here-document's start (`cat <<EOF > f | sh && rm x`) under the heredoc node; those
 * redirects apply to the command, and those statements still run, so both are kept.
 */
function redirectsOf(node: Node, ctx: WalkContext, collector: Collector): ShellRedirect[] {
  const descriptor = node.childForFieldName('descriptor');
  const fd = descriptor === null ? undefined : Number(descriptor.text);
  const operator = node.children.find((c) => !c.isNamed)?.type ?? '';
  if (node.type === 'heredoc_redirect') {
    collector.opaque.add('heredoc');
    const out: ShellRedirect[] = [{ kind: 'heredoc', operator, fd, target: undefined }];
    let piped = false;
    for (const child of node.children) {
        if (!child.isNamed) {
        piped = child.type === '|' || child.type === '|&';
        continue;
      }
      if (child.type === 'file_redirect' || child.type === 'herestring_redirect' || child.type === 'heredoc_redirect') {
        out.push(...redirectsOf(child, ctx, collector));
      } else if (isStatement(child.type)) {
        walkStatement(child, { ...ctx, nested: true, pipedInto: piped || child.type === 'pipeline', redirects: [], depth: ctx.depth + 1 }, collector);
      } else if (child.type !== 'heredoc_start' && child.type !== 'heredoc_end') {
        walkWordsIn(child, { ...ctx, nested: true }, collector);
      }
    }
    return out;
  }
  if (node.type === 'herestring_redirect') {
    collector.opaque.add('heredoc');
    const word = node.namedChildren.find((c) => c.type !== 'file_descriptor');
    return [{ kind: 'herestring', operator, fd, target: word == null ? undefined : wordOf(word, ctx, collector) }];
  }
  const destination = node.childForFieldName('destination') ?? node.namedChildren.find((c) => c.type !== 'file_descriptor') ?? null;
  const target = destination === null ? undefined : wordOf(destination, ctx, collector);
  // `>&2` and `<&0` duplicate descriptors; `>& file` (like `&> file`) writes a file.
  const isDup = (operator === '>&' || operator === '<&' || operator === '>&-' || operator === '<&-') && (target === undefined || /^(\d+|-)$/.test(target.text));
  return [{ kind: isDup ? 'dup' : 'file', operator, fd, target }];
}

function collectCommand(node: Node, ctx: WalkContext, collector: Collector): void {
  const argv: ShellWord[] = [];
  const assignments: string[] = [];
  const redirects: ShellRedirect[] = [...ctx.redirects];
  const opaque = new Set<OpaqueReason>();
  // tree-sitter-bash splits some single bash words in two (`'r'\m` is `rm` to bash); two word
  // nodes with nothing between them are one word.
  let lastWordEnd = -1;
  // tree-sitter sometimes reads a command on across a newline (`git ==\nrm x`, or `a | b | c x`
  // then `d || e` on the next line, are one command to it). To bash a bare newline always ends
  // a simple command, so the words after it start a command of their own.
  const lineStarts: number[] = [];
  const pushWord = (word: ShellWord, start: number, end: number): void => {
    const previous = argv[argv.length - 1];
    if (previous !== undefined && start === lastWordEnd) argv[argv.length - 1] = joinWords(previous, word);
    else {
      if (lastWordEnd >= 0 && UNESCAPED_NEWLINE.test(node.text.slice(lastWordEnd - node.startIndex, start - node.startIndex))) lineStarts.push(argv.length);
      argv.push(word);
    }
    lastWordEnd = end;
  };
  for (const child of node.children) {
    if (!child.isNamed) {
      // `==` and `=~` come through as tokens of their own; to bash they are words.
      pushWord(literalWord(child.text), child.startIndex, child.endIndex);
      continue;
    }
    switch (child.type) {
      case 'variable_assignment':
        assignments.push(child.text);
        opaque.add('env_prefix');
        walkWordsIn(child, { ...ctx, nested: true }, collector);
        break;
      case 'command_name': {
        const inner = child.firstNamedChild;
        pushWord(inner === null ? wordOf(child, ctx, collector) : wordOf(inner, ctx, collector), child.startIndex, child.endIndex);
        break;
      }
      case 'file_redirect':
      case 'heredoc_redirect':
      case 'herestring_redirect':
        redirects.push(...redirectsOf(child, ctx, collector));
        break;
      case 'comment':
        break;
      default:
        if (isStatement(child.type)) {
          // `time (curl x | bash)`: a statement where a word would be; it runs, so walk it.
          opaque.add('subshell');
          walkStatement(child, { ...ctx, nested: true, depth: ctx.depth + 1 }, collector);
        } else {
          pushWord(wordOf(child, ctx, collector), child.startIndex, child.endIndex);
        }
    }
  }
  if (argv.length === 0) {
    // Only assignments and redirects: `X=1 > file`.
    argv.push(literalWord(':'));
    opaque.add('env_prefix');
  }
  for (const redirect of redirects) {
    if (redirect.kind === 'heredoc' || redirect.kind === 'herestring') opaque.add('heredoc');
    else if (redirect.kind === 'file' && !isHarmlessRedirect(redirect)) opaque.add('redirect');
  }
  const bounds = [0, ...lineStarts, argv.length];
  for (let i = 0; i + 1 < bounds.length; i++) {
    const words = argv.slice(bounds[i], bounds[i + 1]);
    const own = new Set(opaque);
    const program = words[0];
    if (program !== undefined && (!program.static || program.glob || program.brace)) own.add('dynamic_program');
    for (const word of words) if (word.raw.startsWith("$'")) own.add('ansi_c_quoting');
    const command = freezeCommand(words, i === 0 ? assignments : [], { ...ctx, redirects }, [...own]);
    collector.commands.push(command);
    for (const reason of own) collector.opaque.add(reason);
    followCode(command, ctx, collector);
  }
}

/** A newline that is not a line continuation (`\\` at the end of the line). */
const UNESCAPED_NEWLINE = /(^|[^\\])\n/;

/** `2>/dev/null` and friends write nowhere a rule needs to know about. */
function isHarmlessRedirect(redirect: ShellRedirect): boolean {
  const target = redirect.target;
  return target !== undefined && target.static && target.text === '/dev/null';
}

function collectDeclaration(node: Node, ctx: WalkContext, collector: Collector): void {
  const nested: WalkContext = { ...ctx, nested: true };
  const words: ShellWord[] = [];
  if (node.type === 'variable_assignment') {
    words.push(literalWord(':'), wordOf(node, nested, collector));
  } else {
    for (const child of node.children) {
        if (!child.isNamed) {
        if (/^[a-z]+$/.test(child.type)) words.push(literalWord(child.type));
        continue;
      }
      words.push(wordOf(child, nested, collector));
    }
    if (node.type === 'variable_assignments') words.unshift(literalWord(':'));
  }
  if (words.length === 0) words.push(literalWord(':'));
  collector.commands.push(freezeCommand(words, [], nested, ['env_prefix']));
}

/**
 * The words a control-flow construct holds outside its statements (`for f in WORDS`,
 * `case WORD in`, `[[ -f WORD ]]`), as a nested pseudo-command named after the construct, so
 * the floor and deny rules see every path the line names.
 */
function collectControlWords(node: Node, ctx: WalkContext, collector: Collector): void {
  const nested: WalkContext = { ...ctx, nested: true };
  const words: ShellWord[] = [literalWord(node.type)];
  if (node.type === 'test_command') {
    // Test expressions split words oddly (`~` apart from `/.ssh/x`); their text, split as
    // bash splits words, is what names files.
    const inner = node.text.replace(/^\[\[?|\]\]?$/g, '');
    for (const piece of inner.split(/[\s()!]+|&&|\|\|/)) {
      if (piece.length === 0) continue;
      const dynamic = /[$`]/.test(piece);
      const text = piece.replace(/^["']|["']$/g, '');
      words.push({ raw: piece, text, static: !dynamic, glob: /[*?[]/.test(piece), brace: false, tilde: piece.startsWith('~') });
    }
  } else {
    for (const field of ['value', 'variable']) {
      for (const child of node.childrenForFieldName(field)) words.push(wordOf(child, nested, collector));
    }
  }
  if (words.length > 1) collector.commands.push(freezeCommand(words, [], nested, ['control_flow']));
}

function freezeCommand(argv: readonly ShellWord[], assignments: readonly string[], ctx: WalkContext, opaque: readonly OpaqueReason[]): SimpleCommand {
  return Object.freeze({
    argv: Object.freeze([...argv]),
    assignments: Object.freeze([...assignments]),
    redirects: Object.freeze([...ctx.redirects]),
    pipedInto: ctx.pipedInto,
    position: ctx.nested ? 'nested' : 'top',
    opaque: Object.freeze([...opaque]),
  });
}

/** Two adjacent pieces of one bash word, as one word. */
function joinWords(a: ShellWord, b: ShellWord): ShellWord {
  return Object.freeze({
    raw: a.raw + b.raw,
    text: a.text + b.text,
    static: a.static && b.static,
    glob: a.glob || b.glob,
    brace: a.brace || b.brace,
    tilde: a.tilde,
  });
}

function literalWord(text: string): ShellWord {
  return { raw: text, text, static: true, glob: false, brace: false, tilde: false };
}

/** Walks a node's descendants for substitutions, whose commands run too. */
function walkWordsIn(node: Node, ctx: WalkContext, collector: Collector): void {
  for (const child of node.namedChildren) {
    if (child.type === 'command_substitution' || child.type === 'process_substitution') {
      collector.opaque.add('substitution');
      walkStatements(child, { ...ctx, nested: true, pipedInto: child.text.startsWith('>('), redirects: [], depth: ctx.depth + 1 }, collector);
    } else if (child.type === 'word' && HIDDEN_CODE.test(child.text)) {
      followHiddenCode(child.text, ctx, collector);
    } else if (ctx.depth < MAX_TREE_DEPTH && !isStatement(child.type)) {
      walkWordsIn(child, { ...ctx, depth: ctx.depth + 1 }, collector);
    }
  }
}

const STATEMENT_TYPES = new Set(['command', 'list', 'pipeline', 'redirected_statement', 'subshell', 'compound_statement', 'function_definition', 'if_statement', 'while_statement', 'for_statement', 'c_style_for_statement', 'case_statement', 'negated_command', 'variable_assignment', 'declaration_command', 'unset_command', 'do_group']);

function isStatement(type: string): boolean {
  return STATEMENT_TYPES.has(type);
}

interface WordParts {
  text: string;
  /** The word with each quoted part replaced by `Q`: what bash's brace expansion sees. */
  shape: string;
  static: boolean;
  glob: boolean;
  brace: boolean;
}

const BRACE_EXPANSION = /\{[^{}]*(?:,|\.\.)[^{}]*\}/;

/** Turns one argument node into a word, applying bash's quote removal. */
function wordOf(node: Node, ctx: WalkContext, collector: Collector): ShellWord {
  const parts: WordParts = { text: '', shape: '', static: true, glob: false, brace: false };
  appendWord(node, parts, ctx, collector, ctx.depth);
  const raw = node.text;
  return Object.freeze({
    raw,
    text: parts.text,
    static: parts.static,
    glob: parts.glob,
    brace: parts.brace || BRACE_EXPANSION.test(parts.shape),
    tilde: raw.startsWith('~'),
  });
}

function appendWord(node: Node, parts: WordParts, ctx: WalkContext, collector: Collector, depth: number): void {
  if (depth > MAX_TREE_DEPTH) {
    collector.opaque.add('too_complex');
    parts.static = false;
    return;
  }
  switch (node.type) {
    case 'word':
    case 'number':
    case 'special_character': {
      if (HIDDEN_CODE.test(node.text)) {
        parts.static = false;
        followHiddenCode(node.text, ctx, collector);
      }
      appendUnquoted(node.text, parts);
      return;
    }
    case 'raw_string':
      parts.text += node.text.slice(1, -1);
      parts.shape += 'Q';
      return;
    case 'variable_name':
      parts.text += node.text;
      parts.shape += node.text;
      return;
    case 'variable_assignment':
      for (const child of node.children) appendWord(child, parts, ctx, collector, depth + 1);
      return;
    case 'string':
      appendDoubleQuoted(node, parts, ctx, collector);
      return;
    case 'concatenation':
      for (const child of node.children) appendWord(child, parts, ctx, collector, depth + 1);
      return;
    case 'brace_expression':
      parts.text += node.text;
      parts.shape += node.text;
      parts.brace = true;
      return;
    case 'extglob_pattern':
      parts.text += node.text;
      parts.glob = true;
      return;
    case 'ansi_c_string':
      collector.opaque.add('ansi_c_quoting');
      parts.text += decodeAnsiC(node.text.slice(2, -1));
      parts.shape += 'Q';
      return;
    case 'command_substitution':
    case 'process_substitution':
      collector.opaque.add('substitution');
      parts.static = false;
      parts.text += node.text;
      walkStatements(node, { ...ctx, nested: true, pipedInto: node.text.startsWith('>('), redirects: [], depth: depth + 1 }, collector);
      return;
    case 'simple_expansion':
    case 'expansion':
    case 'arithmetic_expansion':
    case 'translated_string':
      collector.opaque.add('expansion');
      parts.static = false;
      parts.text += node.text;
      walkWordsIn(node, { ...ctx, nested: true }, collector);
      return;
    default:
      if (!node.isNamed) {
        // Anonymous tokens inside a concatenation are literal text (`=`, `:`, ...),
        // except the ones bash expands.
        appendUnquoted(node.text, parts);
        return;
      }
      collector.opaque.add(node.isError || node.isMissing ? 'unparseable' : 'too_complex');
      parts.static = false;
      parts.text += node.text;
      walkWordsIn(node, { ...ctx, nested: true }, collector);
  }
}

function appendUnquoted(raw: string, parts: WordParts): void {
  const unquoted = unescapeUnquoted(raw);
  parts.text += unquoted.text;
  parts.shape += unquoted.shape;
  if (unquoted.glob) parts.glob = true;
  if (unquoted.brace) parts.brace = true;
}

function appendDoubleQuoted(node: Node, parts: WordParts, ctx: WalkContext, collector: Collector): void {
  let dynamic = false;
  for (const child of node.namedChildren) {
    if (child.type === 'string_content') continue;
    dynamic = true;
    appendWord(child, { text: '', shape: '', static: true, glob: false, brace: false }, ctx, collector, ctx.depth + 1);
  }
  const body = node.text.slice(1, -1);
  parts.shape += 'Q';
  parts.text += body.replace(/\\([$`"\\\n])/g, (_m, c: string) => (c === '\n' ? '' : c));
  if (dynamic) parts.static = false;
}

/** Backticks or `$(` in text the grammar did not parse as a substitution. */
const HIDDEN_CODE = /`|\$\(/;

/** Parses code that sits in a word as text: between backticks, or after `$(`. */
function followHiddenCode(text: string, ctx: WalkContext, collector: Collector): void {
  collector.opaque.add('substitution');
  const pieces: string[] = [];
  for (const match of text.matchAll(/`([^`]*)`?/g)) if (match[1] !== undefined) pieces.push(match[1]);
  const open = text.indexOf('$(');
  if (open !== -1) pieces.push(text.slice(open + 2, Math.max(open + 2, text.lastIndexOf(')'))));
  for (const piece of pieces) if (piece.trim().length > 0) parseCode([literalWord(piece)], { ...ctx, nested: true }, collector);
}

/** Removes backslash escapes from an unquoted word and notes what bash would expand in it. */
function unescapeUnquoted(raw: string): { text: string; shape: string; glob: boolean; brace: boolean } {
  let text = '';
  let shape = '';
  let glob = false;
  let braceOpen = -1;
  let brace = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as string;
    if (c === '\\') {
      i++;
      if (i < raw.length && raw[i] !== '\n') text += raw[i] ?? '';
      // An escaped character is quoted: it takes no part in brace expansion.
      shape += 'Q';
      continue;
    }
    shape += c;
    if (c === '*' || c === '?' || c === '[') glob = true;
    if (c === '{') braceOpen = i;
    if (c === '}' && braceOpen !== -1) {
      const inside = raw.slice(braceOpen + 1, i);
      if (inside.includes(',') || inside.includes('..')) brace = true;
    }
    text += c;
  }
  return { text, shape, glob, brace };
}

/**
 * Follows code hidden in arguments: `bash -c CODE`, `eval ARGS`, and wrappers such as
 * `sudo CMD`. What is found becomes nested commands, seen by the floor and deny rules.
 */
function followCode(command: SimpleCommand, ctx: WalkContext, collector: Collector, wrapperDepth = 0): void {
  const program = command.argv[0];
  if (program === undefined || !program.static) return;
  if (wrapperDepth > MAX_WRAPPER_DEPTH) {
    collector.opaque.add('too_complex');
    return;
  }
  const base = interpreterName(program.text);
  const args = command.argv.slice(1);
  if (base === 'eval') {
    collector.opaque.add('eval');
    parseCode(args, ctx, collector);
    return;
  }
  if (SHELLS.has(base)) {
    const code = shellCodeArgument(args);
    if (code !== undefined) {
      collector.opaque.add('interpreter_code');
      parseCode([code], ctx, collector);
    }
    return;
  }
  if (SHELL_CODE_WRAPPERS.has(base)) {
    const index = args.findIndex((a) => a.text === '-c' || a.text === '--command' || a.text.startsWith('--command='));
    if (index !== -1) {
      collector.opaque.add('interpreter_code');
      const flag = (args[index] as ShellWord).text;
      const code = flag.startsWith('--command=') ? literalWord(flag.slice('--command='.length)) : args[index + 1];
      if (code !== undefined) parseCode([code], ctx, collector);
      return;
    }
  }
  const flags = CODE_FLAGS.get(base);
  if (flags !== undefined) {
    const index = args.findIndex((a) => flags.includes(a.text) || flags.some((f) => f.length === 2 && a.text.startsWith('-') && !a.text.startsWith('--') && a.text.includes(f[1] as string)));
    if (index !== -1 || base === 'tclsh') collector.opaque.add('interpreter_code');
    return;
  }
  if (PROGRAM_TEXT_TOOLS.has(base)) {
    collector.opaque.add('interpreter_code');
    return;
  }
  if (base === 'find' && args.some((a) => /^-(exec|execdir|ok|okdir)$/.test(a.text))) {
    collector.opaque.add('interpreter_code');
    for (let i = 0; i < args.length; i++) {
      if (!/^-(exec|execdir|ok|okdir)$/.test((args[i] as ShellWord).text)) continue;
      const end = args.findIndex((a, j) => j > i && (a.text === ';' || a.text === '+'));
      const inner = args.slice(i + 1, end === -1 ? undefined : end);
      if (inner.length > 0) pushWrapped(inner, command, collector, wrapperDepth);
    }
    return;
  }
  if (base === 'trap' || base === 'watch') {
    // `trap CODE SIGNAL` and `watch CODE` run CODE through the shell later.
    collector.opaque.add('eval');
    const code = base === 'trap' ? args.find((a) => !a.text.startsWith('-')) : args.filter((a) => !a.text.startsWith('-')).slice(0, 1)[0];
    if (code !== undefined) parseCode([code], ctx, collector);
    return;
  }
  if (base === 'env') {
    // `env -S "rm x"` splits its argument into a command line.
    const split = envSplitOption(args);
    if (split !== -1) {
      collector.opaque.add('interpreter_code');
      const flag = (args[split] as ShellWord).text;
      const attached = flag.startsWith('--split-string=') ? flag.slice('--split-string='.length) : /^-[a-zA-Z]*S./.test(flag) ? flag.slice(flag.indexOf('S') + 1) : undefined;
      const rest = args.slice(split + 1);
      const code = attached === undefined ? rest : [literalWord(attached), ...rest];
      parseCode(code, ctx, collector);
      return;
    }
  }
  const inner = unwrap(base, args);
  if (inner !== undefined && inner.length > 0) pushWrapped(base === 'xargs' ? withPlaceholders(inner, args) : inner, command, collector, wrapperDepth);
}

/**
 * Where env's `-S` stands among its own options, which end at the first word that is not one
 * (`env A=1 rm -S x` runs rm with `-S`; it splits nothing).
 */
function envSplitOption(args: readonly ShellWord[]): number {
  for (let i = 0; i < args.length; i++) {
    const text = (args[i] as ShellWord).text;
    if (text === '--' || !text.startsWith('-') || text === '-') return -1;
    if (text === '-S' || text === '--split-string' || text.startsWith('--split-string=') || /^-[a-zA-Z]*S/.test(text)) return i;
    // Options that take the next word as their value.
    if (/^-[a-zA-Z]*[uC]$/.test(text) || text === '--unset' || text === '--chdir') i++;
  }
  return -1;
}

/**
 * In a command xargs runs, the replace-string (`{}` by default with -I/-i) is filled from
 * standard input: a word holding it is not static.
 */
function withPlaceholders(inner: readonly ShellWord[], xargsArgs: readonly ShellWord[]): ShellWord[] {
  const flag = xargsArgs.findIndex((a) => a.text === '-I' || a.text.startsWith('-I') || a.text === '-i' || a.text.startsWith('--replace'));
  let placeholder = '{}';
  if (flag !== -1) {
    const word = (xargsArgs[flag] as ShellWord).text;
    if (word === '-I') placeholder = xargsArgs[flag + 1]?.text ?? '{}';
    else if (word.startsWith('-I')) placeholder = word.slice(2);
    else if (word.startsWith('--replace=')) placeholder = word.slice('--replace='.length);
  }
  return inner.map((w, i) => (i > 0 && placeholder.length > 0 && w.text.includes(placeholder) ? { ...w, static: false } : w));
}

function pushWrapped(argv: readonly ShellWord[], outer: SimpleCommand, collector: Collector, wrapperDepth: number): void {
  const nested: SimpleCommand = Object.freeze({
    argv: Object.freeze([...argv]),
    assignments: Object.freeze([]),
    redirects: outer.redirects,
    pipedInto: outer.pipedInto,
    position: 'nested',
    opaque: outer.opaque,
  });
  collector.commands.push(nested);
  const base = argv[0]?.static === true ? interpreterName(argv[0].text) : '';
  // The wrapped program may itself be a shell or another wrapper (`sudo bash -c ...`).
  if (base !== '') followCode(nested, { nested: true, pipedInto: outer.pipedInto, redirects: outer.redirects, depth: 0 }, collector, wrapperDepth + 1);
}

/** The CODE in `bash [-opts] -c CODE`, or `bash -lc CODE`. */
function shellCodeArgument(args: readonly ShellWord[]): ShellWord | undefined {
  let sawC = false;
  for (let i = 0; i < args.length; i++) {
    const text = (args[i] as ShellWord).text;
    if (/^[-+][oO]$/.test(text)) {
      i++;
      continue;
    }
    if (/^-[a-zA-Z]*c[a-zA-Z]*$/.test(text)) {
      sawC = true;
      continue;
    }
    if ((text.startsWith('-') || text.startsWith('+')) && text !== '-') continue;
    return sawC ? args[i] : undefined;
  }
  return undefined;
}

function parseCode(words: readonly ShellWord[], ctx: WalkContext, collector: Collector): void {
  if (words.length === 0) return;
  if (collector.codeDepth >= MAX_CODE_DEPTH || words.some((w) => !w.static)) {
    collector.opaque.add('too_complex');
    return;
  }
  const inner = analyze(collector.parser, collector.grammar, words.map((w) => w.text).join(' '), collector.codeDepth + 1);
  for (const reason of inner.opaque) collector.opaque.add(reason);
  for (const command of inner.commands) {
    collector.commands.push({ ...command, position: 'nested', pipedInto: command.pipedInto || ctx.pipedInto });
  }
}

/** Options of common wrappers that take a value, so the value is not taken for the program. */
const WRAPPER_VALUE_OPTIONS: ReadonlyMap<string, ReadonlySet<string>> = new Map([
  ['sudo', new Set(['-u', '-g', '-C', '-D', '-h', '-p', '-r', '-t', '-U', '-T', '-R', '--user', '--group', '--chdir', '--prompt', '--host'])],
  ['env', new Set(['-u', '--unset', '-C', '--chdir', '-S', '--split-string'])],
  ['timeout', new Set(['-s', '--signal', '-k', '--kill-after'])],
  ['nice', new Set(['-n', '--adjustment'])],
  ['ionice', new Set(['-c', '-n', '-p', '-P', '-u', '--class', '--classdata'])],
  ['xargs', new Set(['-a', '-d', '-E', '-e', '-I', '-i', '-L', '-l', '-n', '-P', '-s', '--arg-file', '--delimiter', '--max-args', '--max-procs', '--max-lines', '--replace'])],
  ['stdbuf', new Set(['-i', '-o', '-e'])],
  ['exec', new Set(['-a'])],
  ['strace', new Set(['-e', '-o', '-p', '-s', '-u', '-E'])],
  ['ltrace', new Set(['-e', '-o', '-p', '-s', '-u'])],
  ['taskset', new Set([])],
  ['chrt', new Set([])],
  ['watch', new Set(['-n', '-d', '--interval'])],
  ['flock', new Set(['-w', '--timeout', '-E', '--conflict-exit-code'])],
  ['time', new Set(['-f', '-o', '--format', '--output'])],
  ['command', new Set([])],
  ['builtin', new Set([])],
  ['nohup', new Set([])],
  ['setsid', new Set([])],
  ['unbuffer', new Set([])],
  ['chroot', new Set(['--userspec', '--groups'])],
  ['caffeinate', new Set([])],
  ['firejail', new Set([])],
  ['busybox', new Set([])],
  ['coproc', new Set([])],
  ['su', new Set(['-s', '--shell', '-g', '--group', '-G', '--supp-group', '-w', '--whitelist-environment'])],
  ['runuser', new Set(['-u', '--user', '-g', '--group', '-G', '--supp-group', '-s', '--shell', '-w', '--whitelist-environment'])],
  ['pkexec', new Set(['--user'])],
  ['unshare', new Set(['-S', '--setuid', '-G', '--setgid', '-R', '--root', '-w', '--wd'])],
  ['nsenter', new Set(['-t', '--target', '-S', '--setuid', '-G', '--setgid', '-r', '--root', '-w', '--wd'])],
  ['systemd-run', new Set(['-u', '--unit', '-p', '--property', '-E', '--setenv', '--uid', '--gid', '--working-directory', '-M', '--machine', '--slice', '--description'])],
  ['fakeroot', new Set(['-l', '--lib', '--faked', '-s', '-i'])],
  ['chpst', new Set(['-u', '-U', '-e', '-n', '-l', '-L', '-m', '-d', '-o', '-p', '-f', '-c', '-r', '-t'])],
  ['parallel', new Set(['-j', '--jobs', '-S', '--sshlogin', '--joblog', '-a', '--arg-file', '-d', '--delimiter', '-I'])],
  ['doas', new Set(['-u', '-C'])],
  ['proxychains', new Set(['-f'])],
  ['torsocks', new Set([])],
  ['ssh-agent', new Set(['-a', '-E', '-t', '-P'])],
  ['dbus-run-session', new Set(['--config-file', '--dbus-daemon'])],
  ['xvfb-run', new Set(['-n', '--server-num', '-s', '--server-args', '-e', '--error-file', '-f', '--auth-file', '-p', '--xauth-protocol'])],
]);

/** Wrappers that take one positional before the program (`timeout 5 CMD`, `chroot DIR CMD`). */
const WRAPPER_LEADING_POSITIONALS: ReadonlyMap<string, number> = new Map([
  ['timeout', 1],
  ['chroot', 1],
  ['taskset', 1],
  ['chrt', 1],
  ['flock', 1],
]);

/** The wrapped command of a wrapper, or undefined when `base` is not a wrapper. */
function unwrap(base: string, args: readonly ShellWord[]): readonly ShellWord[] | undefined {
  const valueOptions = WRAPPER_VALUE_OPTIONS.get(base);
  if (valueOptions === undefined) return undefined;
  if (base === 'command' && args.some((a) => a.text === '-v' || a.text === '-V')) return undefined;
  let positionals = WRAPPER_LEADING_POSITIONALS.get(base) ?? 0;
  let i = 0;
  while (i < args.length) {
    const text = (args[i] as ShellWord).text;
    if (text === '--') {
      i++;
      break;
    }
    if (text.startsWith('-') && text.length > 1) {
      const clusterTakesValue = !text.startsWith('--') && text.length > 2 && valueOptions.has(`-${text.slice(-1)}`);
      i += valueOptions.has(text) || clusterTakesValue ? 2 : 1;
      continue;
    }
    if (base === 'env' && /^[A-Za-z_][A-Za-z0-9_]*=/.test(text)) {
      i++;
      continue;
    }
    if (positionals > 0) {
      positionals--;
      i++;
      continue;
    }
    break;
  }
  return args.slice(i);
}

/** Characters that end a command when bash reads them unquoted, or open a nested one. */
const SHADOW_SEPARATORS = /([;&|\n()`{}]|\$\(|<\(|>\()/;

/**
 * A deliberately naive reading of a line that failed to parse: split at every character that
 * could end or open a command, quotes ignored, and drop quote characters from the words. It
 * over-splits on purpose; its commands are only ever used to deny.
 */
function shadowSplit(line: string): { argv: ShellWord[]; piped: boolean }[] {
  const commands: { argv: ShellWord[]; piped: boolean }[] = [];
  const pieces = line.split(SHADOW_SEPARATORS);
  // With a capturing separator, split() alternates text and separator.
  for (let i = 0; i < pieces.length && commands.length < 4096; i += 2) {
    const words = (pieces[i] ?? '')
      .split(/\s+/)
      .map((w) => w.replace(/["'\\]/g, ''))
      .filter((w) => w.length > 0);
    const piped = pieces[i - 1] === '|';
    if (words.length > 0) commands.push({ argv: words.map((text) => ({ raw: text, text, static: true, glob: /[*?[]/.test(text), brace: false, tilde: text.startsWith('~') })), piped });
  }
  return commands;
}

/** The `NAME=value` words that open a shadow command, which bash reads as assignments. */
function leadingAssignments(argv: readonly ShellWord[]): string[] {
  const assignments: string[] = [];
  for (const word of argv) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*\+?=/.test(word.text)) break;
    assignments.push(word.text);
  }
  return assignments;
}

/** Decodes the body of bash's `$'...'` quoting, as bash does. */
export function decodeAnsiC(body: string): string {
  const simple: Readonly<Record<string, string>> = { a: '\x07', b: '\b', e: '\x1b', E: '\x1b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"', '?': '?' };
  return body.replace(/\\(x[0-9a-fA-F]{1,2}|u[0-9a-fA-F]{1,4}|U[0-9a-fA-F]{1,8}|[0-7]{1,3}|c.|.)/gs, (whole, esc: string) => {
    const head = esc[0] as string;
    if (head === 'x' || head === 'u' || head === 'U') {
      const code = Number.parseInt(esc.slice(1), 16);
      return code <= 0x10ffff ? String.fromCodePoint(code) : whole;
    }
    if (/[0-7]/.test(head)) return String.fromCharCode(Number.parseInt(esc, 8) & 0xff);
    if (head === 'c') return String.fromCharCode((esc.charCodeAt(1) & 0x1f));
    return simple[head] ?? whole;
  });
}
