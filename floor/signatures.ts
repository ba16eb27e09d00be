/**
 * Command signatures the floor denies whatever the paths: recursive deletion of `/`, the home
 * directory or a directory holding a protected place; fork bombs; and a shell or interpreter
 * running a program it reads from a pipe or from another command's output (`curl … | sh`,
 * `bash <(curl …)`, `eval "$(curl …)"`). Raw-text fallbacks cover code the parser could not see.
 */
import type { FloorContext, FloorHit, ShellWord, SimpleCommand } from '../src/shared/types.js';
import { hasGlobChars } from './glob.js';
import { isUnder, segmentsOf } from './paths.js';
import { EXTRA_WRAPPERS, INTERPRETERS, SHELLS, STDIN_RUNNERS, interpreterSource, isStdinOperand, programName, programOf, shellSource, type Program, type ProgramSource } from './programs.js';
import { protectedPrefixes } from './protected.js';
import { awkRunsInput, sedRunsInput } from './scripts.js';
import { decodeDynamic, readWord, type WordEnv } from './words.js';

/** Appended to every reason: the floor is not a rule and nothing lifts it. */
export const FLOOR_SUFFIX = '; the floor cannot be lifted by any rule or mode';

const SHOWN_MAX = 160;

/** A command as written, shortened for a reason text. */
function shown(command: SimpleCommand): string {
  const text = command.argv.map((w) => w.raw).join(' ');
  return JSON.stringify(text.length > SHOWN_MAX ? `${text.slice(0, SHOWN_MAX)}…` : text);
}

/** Text, shortened for a reason. */
function shownText(text: string): string {
  return JSON.stringify(text.length > SHOWN_MAX ? `${text.slice(0, SHOWN_MAX)}…` : text);
}

/** A word as written, shortened for a reason text. */
function shownWord(word: ShellWord): string {
  return JSON.stringify(word.raw.length > SHOWN_MAX ? `${word.raw.slice(0, SHOWN_MAX)}…` : word.raw);
}

/** The argv a command really runs: `busybox rm …` runs `rm …`. */
export function effectiveArgv(command: SimpleCommand): readonly ShellWord[] {
  const argv = command.argv;
  let start = 0;
  for (let word = argv[0]; argv.length - start > 1 && word?.static === true && MULTICALL.test(word.text); word = argv[start]) start++;
  return start === 0 ? argv : argv.slice(start);
}

const MULTICALL = /(?:^|\/)(?:busybox|toybox)$/i;

// ---------------------------------------------------------------------------------------------
// Recursive deletion

type DeletionEntry = 'rm_root' | 'rm_home' | 'rm_protected';

/** What deleting `path` recursively would take with it, if that is floor-protected. */
function deletionTarget(ctx: FloorContext, path: string): { entry: DeletionEntry; what: string } | undefined {
  const lower = path.toLowerCase();
  if (lower === '/') return { entry: 'rm_root', what: 'the root directory "/"' };
  const home = ctx.home.toLowerCase();
  if (lower === home) return { entry: 'rm_home', what: `the home directory ${JSON.stringify(ctx.home)}` };
  if (isUnder(home, lower)) return { entry: 'rm_home', what: `${JSON.stringify(path)}, which holds the home directory ${JSON.stringify(ctx.home)}` };
  for (const prefix of protectedPrefixes(ctx)) {
    if (isUnder(prefix.path, lower)) return { entry: 'rm_protected', what: `${JSON.stringify(path)}, which is or holds the protected ${JSON.stringify(prefix.shown)}` };
  }
  return undefined;
}

/** For a glob operand, the directory it expands within (`/*` → `/`, `~/.*` → home). */
function globDirectory(path: string): string | undefined {
  const segments = segmentsOf(path);
  const first = segments.findIndex(hasGlobChars);
  if (first === -1) return undefined;
  return '/' + segments.slice(0, first).join('/');
}

/** Every absolute form of a word, for deletion checks: literal paths and glob directories. */
function deletionPaths(word: ShellWord, env: WordEnv, resolve: (text: string) => readonly string[]): string[] {
  const out: string[] = [];
  for (const reading of readWord(word, env)) {
    if (reading.namesOnly || reading.text === '') continue;
    for (const path of resolve(reading.text)) {
      const dir = reading.glob ? globDirectory(path) : undefined;
      out.push(dir ?? path);
    }
  }
  return out;
}

const RECURSIVE_SHORT = /^-[a-zA-Z]*[rR]/;

function isRecursiveOption(text: string): boolean {
  if (RECURSIVE_SHORT.test(text)) return true;
  // GNU getopt accepts any unambiguous prefix: `--rec`, `--recursive`.
  return text.length > 3 && text.startsWith('--r') && '--recursive'.startsWith(text);
}

/** `rm -r` of `/`, home, or a directory holding a protected place; also when the program is computed. */
export function checkRecursiveDelete(ctx: FloorContext, command: SimpleCommand, program: Program, argv: readonly ShellWord[], env: WordEnv, resolve: (text: string) => readonly string[]): FloorHit | undefined {
  if (program.kind === 'static' && program.name === 'find') return checkFindDelete(ctx, command, argv, env, resolve);
  const operands = rmOperands(program, argv);
  if (operands === undefined) return undefined;
  for (const operand of operands) {
    const computed = computedPath(operand, env);
    if (computed !== undefined) return { entry: 'rm_root', reason: `${shown(command)} recursively deletes ${computed}${FLOOR_SUFFIX}` };
    for (const path of deletionPaths(operand, env, resolve)) {
      const target = deletionTarget(ctx, path);
      if (target !== undefined) {
        return { entry: target.entry, reason: `${shown(command)} recursively deletes ${target.what}${FLOOR_SUFFIX}` };
      }
    }
  }
  return undefined;
}

/**
 * A deletion operand whose value is cut or rewritten by an expansion (`"${HOME:0:1}"` is `/`,
 * `${X%%/…}` may be empty, `${X#/…}` a short prefix) or holds a command's output: it can be
 * `/` whatever the values. A plain `$DIR` is not: unset it is empty, which deletes nothing.
 */
function computedPath(word: ShellWord, env: WordEnv): string | undefined {
  if (word.static) return undefined;
  const decoded = decodeDynamic(word.text, env);
  if (decoded.transformed) return `${shownWord(word)}, a path an expansion cuts or rewrites, which can make "/" out of any value`;
  if (decoded.output) return `${shownWord(word)}, a path made of a command's output, which can be "/"`;
  return undefined;
}

/** The operands of an `rm -r` (also with a computed program), or undefined when the command is not one. */
function rmOperands(program: Program, argv: readonly ShellWord[]): ShellWord[] | undefined {
  const couldBeRm = program.kind === 'dynamic' || program.is('rm');
  if (!couldBeRm) return undefined;
  let recursive = false;
  let options = true;
  const operands: ShellWord[] = [];
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] as ShellWord;
    if (options && arg.static && arg.text === '--') options = false;
    else if (options && arg.static && arg.text.startsWith('-') && arg.text.length > 1) recursive ||= isRecursiveOption(arg.text);
    else operands.push(arg);
  }
  return recursive ? operands : undefined;
}

/** The start points of a `find … -delete` (or `-exec rm`); `.` when none is given; undefined when it deletes nothing. */
function findStarts(argv: readonly ShellWord[]): ShellWord[] | undefined {
  let destructive = false;
  for (let i = 1; i < argv.length; i++) {
    const text = (argv[i] as ShellWord).text;
    if (text === '-delete') destructive = true;
    if (/^-(?:exec|execdir|ok|okdir)$/.test(text)) {
      const next = argv[i + 1];
      if (next !== undefined && FIND_DESTRUCTIVE_EXEC.has(programName(next.text))) destructive = true;
    }
  }
  if (!destructive) return undefined;
  const starts: ShellWord[] = [];
  for (let i = 1; i < argv.length; i++) {
    const arg = argv[i] as ShellWord;
    if (/^[-(!),]/.test(arg.text)) break;
    starts.push(arg);
  }
  return starts;
}

/** What a recursive delete (`rm -r`, `find -delete`) removes: its operands, or undefined when the command is not one. */
export function deletedOperands(program: Program, argv: readonly ShellWord[]): readonly ShellWord[] | undefined {
  if (program.kind === 'static' && program.name === 'find') {
    const starts = findStarts(argv);
    return starts?.length === 0 ? [literal('.')] : starts;
  }
  return rmOperands(program, argv);
}

/**
 * Checks where a recursive delete's operand really leads, after the gate has followed its
 * symlinks: `rm -rf link/` with `link → ~` deletes the home directory's contents, though its
 * text names neither. `/`, the home directory and what holds a protected prefix are denied.
 */
export function checkDeletedPath(ctx: FloorContext, resolvedPath: string): FloorHit | undefined {
  const target = deletionTarget(ctx, resolvedPath);
  return target === undefined ? undefined : { entry: target.entry, reason: `a recursive delete reaches ${target.what}${FLOOR_SUFFIX}` };
}

/** For a glob operand, the directory it expands within (`/*` → `/`, `~/.*` → home). */
export function deletionGlobDirectory(path: string): string | undefined {
  return globDirectory(path);
}

const FIND_DESTRUCTIVE_EXEC = new Set(['rm', 'shred', 'unlink', 'srm']);

/** `find / -delete`, `find ~ -exec rm -rf {} +`: recursive deletion by another name. */
function checkFindDelete(ctx: FloorContext, command: SimpleCommand, argv: readonly ShellWord[], env: WordEnv, resolve: (text: string) => readonly string[]): FloorHit | undefined {
  const starts = findStarts(argv);
  if (starts === undefined) return undefined;
  const roots = starts.length === 0 ? ['.'] : [];
  for (const start of starts) {
    const computed = computedPath(start, env);
    if (computed !== undefined) return { entry: 'rm_root', reason: `${shown(command)} recursively deletes ${computed}${FLOOR_SUFFIX}` };
  }
  for (const path of [...roots.flatMap(resolve), ...starts.flatMap((w) => deletionPaths(w, env, resolve))]) {
    const target = deletionTarget(ctx, path);
    if (target !== undefined) return { entry: target.entry, reason: `${shown(command)} recursively deletes ${target.what}${FLOOR_SUFFIX}` };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Fork bombs

// A function whose body runs itself twice at once, through a pipe or in the background:
// `:(){ :|:& };:`, `bomb() { bomb | bomb & }`, `function f { f & f; }`. Definitions are found
// with a linear scan; each body (bounded) is searched without backtracking.
const FUNCTION_DEFINITION = /(?<![^\s;&|(){}'"])(?:function\s+([^\s(){}|&;<>'"`$]{1,64})\s*(?:\(\s*\))?|([^\s(){}|&;<>'"`$]{1,64})\s*\(\s*\))\s*[{(]/g;
const MAX_DEFINITIONS = 256;
const MAX_BODY = 512;
const BEFORE_CALL = new Set(['', ';', '&', '|', '(', '{', '\n']);
const AFTER_CALL = new Set(['', ';', '&', '|', ')', '}', '\n']);

/** True when `body` (whitespace removed) runs `name` twice at once: `name|name` or `name&name`. */
function callsItselfTwice(body: string, name: string): boolean {
  for (const operator of ['|', '&']) {
    const twice = name + operator + name;
    for (let at = body.indexOf(twice); at !== -1; at = body.indexOf(twice, at + 1)) {
      const before = body.charAt(at - 1);
      const after = body.charAt(at + twice.length);
      // `a||b` and `a&&b` run one after the other; they are not a fork.
      if (before === operator || body.charAt(at + name.length + 1) === operator) continue;
      if (BEFORE_CALL.has(before) && AFTER_CALL.has(after === operator ? '' : after)) return true;
    }
  }
  return false;
}

function findForkFunction(line: string): string | undefined {
  let count = 0;
  for (const match of line.matchAll(FUNCTION_DEFINITION)) {
    if (++count > MAX_DEFINITIONS) return undefined;
    const name = match[1] ?? match[2] ?? '';
    const from = match.index + match[0].length;
    const close = line.indexOf('}', from);
    const body = line.slice(from, close === -1 ? from + MAX_BODY : Math.min(close, from + MAX_BODY)).replace(/\s+/g, '');
    if (name !== '' && callsItselfTwice(body, name)) return name;
  }
  return undefined;
}

const FORK_HINT = /\)\s*[{(]|\bfunction\s/;

/** Fork loops in other languages: perl's `fork while fork`, `while(1){fork}`, ruby's `loop { fork }`. */
const FORK_LOOPS = [
  /\bfork\s*(?:\(\s*\))?\s*while\s*\(?\s*fork\b/,
  /\bwhile\s*\(?\s*(?:1|true)\s*\)?\s*(?::|\{|\bdo\b)?\s*(?:os\.|process\.|posix\.)?fork\s*(?:\(\s*\))?\s*(?:[;}]|$)/i,
  /\bloop\s*(?:\{|do\b)\s*fork\b/,
];

const WHITESPACE_RUNS = /\s+/g;

/** A fork bomb anywhere in the line, quoted or not: its text is never needed. */
export function checkForkBomb(raw: string): FloorHit | undefined {
  // Each run of blanks as one space: the patterns' neighbouring `\s*` then cannot backtrack
  // over a long run (`while` and 64 KiB of spaces took seconds).
  const line = raw.includes('  ') || raw.includes('\n') || raw.includes('\t') ? raw.replace(WHITESPACE_RUNS, ' ') : raw;
  const name = FORK_HINT.test(line) ? findForkFunction(line) : undefined;
  if (name !== undefined) {
    return { entry: 'fork_bomb', reason: `the line defines a fork bomb: ${JSON.stringify(name)} runs itself twice at once${FLOOR_SUFFIX}` };
  }
  if (line.includes('fork') && FORK_LOOPS.some((r) => r.test(line))) {
    return { entry: 'fork_bomb', reason: `the line runs fork() in an endless loop${FLOOR_SUFFIX}` };
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Shells and interpreters fed code they read from elsewhere

/** Standard input comes from another command: a pipe, or `< <(…)`. */
function stdinFromCommand(command: SimpleCommand): boolean {
  if (command.pipedInto) return true;
  return command.redirects.some((r) => r.kind === 'file' && r.operator.startsWith('<') && r.target !== undefined && !r.target.static && r.target.raw.startsWith('<('));
}

/** Standard input is a here-document or here-string: code the parser never reads. */
function stdinFromHeredoc(command: SimpleCommand): boolean {
  return command.redirects.some((r) => r.kind === 'heredoc' || r.kind === 'herestring');
}

/** Code that another command produces: `"$(curl …)"`, backticks, `<(…)`. */
function isCommandOutput(word: ShellWord | undefined): boolean {
  if (word === undefined || word.static) return false;
  return word.raw.includes('$(') || word.raw.includes('`') || word.raw.includes('<(');
}

function pipeHit(command: SimpleCommand, why: string): FloorHit {
  return { entry: 'pipe_to_shell', reason: `${shown(command)}: ${why}, code no rule can see${FLOOR_SUFFIX}` };
}

/** Inline code that evaluates its standard input: `exec(sys.stdin.read())`, `eval(STDIN.read)`, `load(io.read())`. */
const STDIN_EVAL = /(?<![.\w])(?:exec|eval|compile|execfile|instance_eval|load(?:string)?)\b[^;\n]{0,80}?(?:stdin|io\.read\b|readFileSync\(\s*(?:0|['"]\/dev\/stdin))/i;

/**
 * Inline code that runs code or commands: eval-like calls not called as a method (`json.load`
 * reads data), process-spawning APIs by any path, and pipe opens. A heuristic: together with
 * EVAL_READS_STDIN it marks code that may run what it reads from the pipe.
 */
const EVAL_CALLS =
  /(?<![\w$.])(?:exec|eval|compile|execfile|load|loadstring|dofile|Function|system|spawn|popen|qx|require_relative)\b|\b(?:os\.(?:system|popen|exec\w*|spawn\w*|posix_spawn\w*)|subprocess|child_process|exec(?:Sync|File|FileSync)|spawnSync|instance_eval|class_eval|module_eval|instance_exec|runInThisContext|runInNewContext|runInContext|IO\.popen|Open3|Kernel\.\w+|shell_exec|passthru|proc_open|pcntl_exec|pty\.spawn|__import__|importlib|commands\.getoutput|Runtime\.getRuntime)\b|\bopen\s*\(?[^;\n]{0,80}?['"]\s*\||['"]\|-['"]|['"]-\|['"]/;

/** Backticks and `%x`/`qx` quoting run a shell command in perl, ruby and php (in JavaScript a backtick is a template). */
const SHELL_QUOTES = /`|%x[{([<|!/]|\bqx\s*[{([<|!/]/;
const SHELL_QUOTE_LANGUAGES = new Set(['perl', 'ruby', 'php']);

/** Inline code that reads standard input: `stdin`/`STDIN`, `input()`, `<>`, `gets`, `ARGF`, `readFileSync(0)`, `/dev/stdin`. */
const EVAL_READS_STDIN =
  /stdin|<>|<<>>|\$<|\bARGF\b|\bgets\b|\breadlines?\b|\binput\s*\(|\braw_input\b|readFileSync\s*\(\s*(?:0\b|['"`]\/dev\/(?:stdin|fd\/0))|readSync\s*\(\s*0\b|\bopen\s*\(\s*0\b|\/dev\/fd\/0|\bio\.(?:read|lines)\b|\bfileinput\b|\bread\s*\(\s*0\b|\$_\b/i;

/** Code an interpreter reads from the pipe and runs: the old narrow pattern, or an eval-like call that reads stdin. */
function evaluatesInput(name: string, code: string, loop: boolean): boolean {
  if (STDIN_EVAL.test(code)) return true;
  const runs = EVAL_CALLS.test(code) || (SHELL_QUOTE_LANGUAGES.has(name) && SHELL_QUOTES.test(code));
  return runs && (loop || EVAL_READS_STDIN.test(code));
}

/** Replace-strings of xargs and parallel that are always meant: `{}` and parallel's `{.}`, `{/}`, `{#}`, `{1}`, …. */
const BRACE_PLACEHOLDER = /^\{[^{}\s]{0,8}\}$/;

/** Text that is, or starts a command with, a replace-string: the pipe's text is the code. */
function isPlaceholderCode(code: string, placeholders: ReadonlySet<string>): boolean {
  const text = code.trim().replace(/^(['"])(.*)\1$/s, '$2').trim();
  if (BRACE_PLACEHOLDER.test(text) || placeholders.has(text)) return true;
  for (const placeholder of placeholders) {
    for (let at = text.indexOf(placeholder); at !== -1; at = text.indexOf(placeholder, at + placeholder.length)) {
      // A whole word only: `-I c` does not make `cd` a placeholder.
      const after = text.charAt(at + placeholder.length);
      if (after !== '' && !WORD_END.test(after)) continue;
      if (atCommandPosition(text, at)) return true;
    }
  }
  return false;
}

/** Characters that end a word. */
const WORD_END = /[\s;&|)'"`]/;

/** Characters after which a word is a command: `;`, `&`, `|`, `(` (and `$(`), `` ` ``, `{`, a newline. */
const COMMAND_SEPARATORS = new Set([';', '&', '|', '(', '`', '{', '\n']);
/** Words after which the next word is a command. */
const COMMAND_KEYWORD = /(?:^|[\s;&|(`{])(?:eval|exec|then|do|else|sudo|env|command|nohup|time)$/;

/** Is the word at `at` in `text` a command (after optional blanks and one quote)? Looks back a bounded distance. */
function atCommandPosition(text: string, at: number): boolean {
  let j = at - 1;
  if (text[j] === '"' || text[j] === "'") j--;
  while (j >= 0 && (text[j] === ' ' || text[j] === '\t')) j--;
  if (j < 0) return true;
  if (COMMAND_SEPARATORS.has(text.charAt(j))) return true;
  // The longest keyword and the character before it fit in nine.
  return COMMAND_KEYWORD.test(text.slice(Math.max(0, j - 8), j + 1));
}

/** Where the replace-strings of the line's xargs and parallel commands are, for judgeSource. */
export interface FedContext {
  /** Replace-strings of xargs (`-I R`, `-i`) and parallel in the line, and `{}`. */
  readonly placeholders: ReadonlySet<string>;
}

const DEFAULT_FED: FedContext = { placeholders: new Set(['{}']) };

/** The replace-strings xargs and parallel use in the line (`-I R`, `-iR`, `--replace=R`; `{}` by default). */
export function replaceStrings(argvs: Iterable<readonly ShellWord[]>): Set<string> {
  const out = new Set(['{}']);
  for (const argv of argvs) {
    const name = programName(argv[0]?.text ?? '');
    if (name !== 'xargs' && name !== 'parallel') continue;
    for (let i = 1; i < argv.length; i++) {
      const text = (argv[i] as ShellWord).text;
      if (text === '-I' || text === '--replace' || text === '-i') {
        const next = argv[i + 1]?.text;
        if (text !== '-i' && next !== undefined) out.add(next);
      } else if (text.startsWith('-I') || text.startsWith('-i')) out.add(text.slice(2));
      else if (text.startsWith('--replace=')) out.add(text.slice('--replace='.length));
      if (out.size > 16) return out;
    }
  }
  out.delete('');
  return out;
}

/** Judges where a shell or interpreter gets its program from; `loop` is perl's or ruby's `-n`/`-p` (the code runs on each line read). */
function judgeSource(command: SimpleCommand, name: string, source: ProgramSource, fedContext: FedContext, loop = false): FloorHit | undefined {
  const fed = stdinFromCommand(command);
  switch (source.kind) {
    case 'stdin':
      return fed ? pipeHit(command, `${name} reads its program from another command's output`) : undefined;
    case 'operand':
      if (isStdinOperand(source.operand)) {
        return pipeHit(command, `${name} runs ${shownWord(source.operand)}, another command's output or standard input`);
      }
      if (fed && isPlaceholderCode(source.operand.text, fedContext.placeholders)) {
        return pipeHit(command, `${name} runs the script ${shownWord(source.operand)} names, which the pipe fills in (a replace-string of xargs or parallel)`);
      }
      return undefined;
    case 'inline':
      if (source.code === undefined) return command.pipedInto ? pipeHit(command, `${name} -c takes its code from the pipe (through xargs)`) : undefined;
      if (isCommandOutput(source.code)) return pipeHit(command, `${name} runs code that another command prints`);
      if (fed && isPlaceholderCode(source.code.text, fedContext.placeholders)) {
        return pipeHit(command, `${name} runs ${shownWord(source.code)} as code, which the pipe fills in (a replace-string of xargs or parallel)`);
      }
      if (fed && evaluatesInput(name, source.code.text, loop)) return pipeHit(command, `${name} evaluates what it reads from the pipe`);
      return undefined;
  }
}

const AWK = new Set(['awk', 'gawk', 'mawk', 'nawk']);

/** Hidden code, found while judging: texts the raw fallbacks should scan. */
export interface HiddenCode {
  /** Text hidden from the parser: scanned for signatures and protected paths. */
  readonly texts: string[];
  /** Inline interpreter code: scanned for signatures and protected paths in string literals. */
  readonly code: string[];
}

/** Pipe-to-shell and code-from-output checks for one command. */
export function checkFedCode(command: SimpleCommand, program: Program, argv: readonly ShellWord[], hidden: HiddenCode, line: string, fedContext: FedContext = DEFAULT_FED): FloorHit | undefined {
  if (program.kind === 'static' && !RUNS_CODE.has(program.name)) return undefined;
  const args = argv.slice(1);
  const fed = stdinFromCommand(command);
  const heredoc = stdinFromHeredoc(command);
  // A static name is looked up; a glob or computed program is tried against every name.
  const shell = program.kind === 'static' ? (SHELLS.has(program.name) ? program.name : undefined) : findName(SHELLS, program);
  if (shell !== undefined) {
    const source = shellSource(args);
    if (source.kind === 'inline' && source.code !== undefined && !source.code.static) hidden.texts.push(source.code.text);
    if (heredoc && source.kind === 'stdin') hidden.texts.push(line);
    return judgeSource(command, shell, source, fedContext);
  }
  const interpreter = program.kind === 'static' ? (INTERPRETERS.has(program.name) ? program.name : undefined) : findName(INTERPRETERS.keys(), program);
  if (interpreter !== undefined) {
    const source = interpreterSource(interpreter, args);
    if (source.kind === 'inline' && source.code !== undefined) hidden.code.push(source.code.text);
    if (heredoc && source.kind === 'stdin') hidden.texts.push(line);
    const loop = (interpreter === 'perl' || interpreter === 'ruby') && args.some((a) => LOOP_CLUSTER.test(a.text));
    return judgeSource(command, interpreter, source, fedContext, loop);
  }
  if (program.kind !== 'static') return undefined;
  const name = program.name;
  if (name === 'source' || name === '.') {
    const operand = args.find((a) => a.text !== '--');
    if (operand !== undefined && (isStdinOperand(operand) || isCommandOutput(operand))) {
      return pipeHit(command, `${name} runs ${JSON.stringify(operand.raw)}, another command's output or standard input`);
    }
    return undefined;
  }
  if (name === 'eval') {
    if (args.some(isCommandOutput)) return pipeHit(command, 'eval runs code that another command prints');
    for (const arg of args) if (!arg.static) hidden.texts.push(arg.text);
    return undefined;
  }
  if (AWK.has(name)) return checkAwk(command, name, args, hidden, fed);
  if (name === 'sed') {
    for (const arg of args) if (!arg.text.startsWith('-')) hidden.texts.push(arg.text);
    return fed ? checkSed(command, args) : undefined;
  }
  if (fed && (name === 'xargs' || name === 'parallel')) {
    // The parser nests the command xargs runs; this reads it again here, so that an option
    // the parser does not know cannot hide it.
    const inner = runnerCommand(name, args);
    const first = inner?.[0];
    if (inner !== undefined && first !== undefined) {
      const nested: SimpleCommand = { ...command, argv: inner, pipedInto: true };
      const hit = checkFedCode(nested, programOf(first), inner, hidden, line, fedContext);
      if (hit !== undefined) return hit;
    }
  }
  if (STDIN_RUNNERS.has(name)) {
    if (heredoc) hidden.texts.push(line);
    const hit = fed ? checkStdinRunner(command, name, args) : undefined;
    if (hit !== undefined) return hit;
  }
  if (fed && EXTRA_WRAPPERS.has(name)) return checkWrapped(command, args, hidden, line);
  return undefined;
}

/** Every static program name checkFedCode has something to say about. */
const RUNS_CODE: ReadonlySet<string> = new Set([...SHELLS, ...INTERPRETERS.keys(), 'source', '.', 'eval', 'awk', 'gawk', 'mawk', 'nawk', 'sed', 'xargs', 'parallel', ...STDIN_RUNNERS, ...EXTRA_WRAPPERS]);

/** perl's and ruby's `-n`/`-p` in a short cluster: the code runs once for each line read. */
const LOOP_CLUSTER = /^-[a-zA-Z]*[np]/;

/** Script operands that are the pipe itself: a program read from standard input. */
const STDIN_FILE = /^(?:-|\/dev\/stdin|\/dev\/fd\/0|\/proc\/(?:self|thread-self|\d+)\/fd\/0)$/;

/** xargs options that take the next word (or an attached value). */
const XARGS_VALUE_OPTIONS = new Set(['-a', '-d', '-E', '-I', '-L', '-n', '-P', '-s', '--arg-file', '--delimiter', '--eof', '--replace', '--max-lines', '--max-args', '--max-procs', '--max-chars', '--process-slot-var']);
/** xargs options whose value can only be attached (`-i{}`, `-l5`, `-e END`'s short form). */
const XARGS_ATTACHED_ONLY = /^-[ile]/;

/** The command xargs or parallel runs for each item it reads (`xargs -0 -I{} sh -c {}` → `sh -c {}`). */
function runnerCommand(name: string, args: readonly ShellWord[]): readonly ShellWord[] | undefined {
  if (name === 'parallel') {
    // `:::` gives the items on the command line: the pipe is not read.
    if (args.some((a) => a.text.startsWith(':::') || a.text === '::::')) return undefined;
    const operands = operandsOf(args, PARALLEL_VALUE_OPTIONS);
    return operands.length === 0 ? undefined : operands;
  }
  for (let i = 0; i < args.length; i++) {
    const text = (args[i] as ShellWord).text;
    if (text === '--') return args.slice(i + 1);
    if (!text.startsWith('-') || text === '-') return args.slice(i);
    if (text.startsWith('--')) {
      if (!text.includes('=') && XARGS_VALUE_OPTIONS.has(text)) i++;
      continue;
    }
    // A cluster: flags, then at most one letter that takes a value (attached or the next word).
    for (let k = 1; k < text.length; k++) {
      const option = `-${text.charAt(k)}`;
      if (XARGS_ATTACHED_ONLY.test(option)) break;
      if (XARGS_VALUE_OPTIONS.has(option)) {
        if (k === text.length - 1) i++;
        break;
      }
    }
  }
  return undefined;
}

/**
 * Parameter expansions, command substitutions and backticks, innermost first. A body stops at
 * the next bracket of its kind, so an unclosed `${` cannot scan the rest of the text (`${a${a…`
 * was quadratic).
 */
const EXPANSION = /\$\{[^{}]*\}|\$\([^()]*\)|\$[A-Za-z_][A-Za-z0-9_]*|\$[0-9@*#?$!-]|`[^`]*`/g;

/** A sed script as the scanner reads it: in a computed word each expansion stands in as `1` (`"${START},${END}p"` → `1,1p`). */
function sedText(text: string, isStatic: boolean): string {
  return isStatic ? text : text.replace(EXPANSION, '1');
}

/** GNU sed fed from a pipe: its `e` command or `s///e` flag runs the pipe's text; `-f -` reads the script from it. */
function checkSed(command: SimpleCommand, args: readonly ShellWord[]): FloorHit | undefined {
  const scripts: string[] = [];
  let given = false;
  let sandbox = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as ShellWord;
    const text = arg.text;
    if (text === '--') {
      const next = args[i + 1];
      if (!given && next !== undefined) scripts.push(sedText(next.text, next.static));
      break;
    }
    if (text === '--sandbox') sandbox = true;
    if (text.startsWith('--expression') || text.startsWith('--file')) {
      given = true;
      const value = text.includes('=') ? text.slice(text.indexOf('=') + 1) : args[++i]?.text;
      if (value === undefined) continue;
      if (text.startsWith('--file')) {
        if (STDIN_FILE.test(value)) return pipeHit(command, 'sed reads its script from the pipe');
      } else scripts.push(sedText(value, arg.static));
      continue;
    }
    if (text === '--line-length') {
      i++;
      continue;
    }
    if (text.startsWith('--')) continue;
    if (text.startsWith('-') && text.length > 1) {
      for (let k = 1; k < text.length; k++) {
        const letter = text.charAt(k);
        if (letter === 'i') break;
        if (letter !== 'e' && letter !== 'f' && letter !== 'l') continue;
        const value = k < text.length - 1 ? text.slice(k + 1) : args[++i]?.text;
        if (letter === 'l' || value === undefined) break;
        given = true;
        if (letter === 'f') {
          if (STDIN_FILE.test(value)) return pipeHit(command, 'sed reads its script from the pipe');
        } else scripts.push(sedText(value, k < text.length - 1 ? arg.static : (args[i]?.static ?? true)));
        break;
      }
      continue;
    }
    if (!given) {
      scripts.push(sedText(text, arg.static));
      given = true;
    }
  }
  if (sandbox || scripts.length === 0) return undefined;
  const verdict = sedRunsInput(scripts.join('\n'));
  if (verdict === 'runs-input') return pipeHit(command, "sed's `e` command or `s///e` flag runs the text it reads from the pipe as a shell command");
  if (verdict === 'unknown') return pipeHit(command, 'sed runs a script the floor cannot read whole, on text from the pipe (its `e` command runs text as a shell command)');
  return undefined;
}

/** awk: its program is inline code; fed from a pipe, a program that runs what it reads is a pipe into a shell. */
function checkAwk(command: SimpleCommand, name: string, args: readonly ShellWord[], hidden: HiddenCode, fed: boolean): FloorHit | undefined {
  const program = awkProgram(args);
  if (program === 'stdin') return fed ? pipeHit(command, `${name} reads its program from the pipe`) : undefined;
  if (program === undefined) return undefined;
  hidden.code.push(program.text);
  if (!fed) return undefined;
  const runs = awkRunsInput(program.text, (text) => RAW_PIPE.test(`| ${text}`), readsProgramFromStdin);
  return runs === undefined ? undefined : pipeHit(command, `${name}: ${runs}`);
}

function findName(names: Iterable<string>, program: Program): string | undefined {
  for (const name of names) if (program.is(name)) return name;
  return undefined;
}


/** A fixed command line (awk's `system("sh")`) that starts a shell or interpreter reading its program from standard input. */
function readsProgramFromStdin(text: string): boolean {
  const words = text.trim().split(/\s+/).slice(0, 64).map(literal);
  // `exec`, `sudo`, `env`, `command` and `nohup` in front run the same program.
  while (words.length > 1 && STDIN_PREFIXES.has(programName(words[0]?.text ?? ''))) words.shift();
  const first = words[0];
  if (first === undefined) return false;
  const name = programName(first.text);
  if (SHELLS.has(name)) return shellSource(words.slice(1)).kind === 'stdin';
  if (INTERPRETERS.has(name)) return interpreterSource(name, words.slice(1)).kind === 'stdin';
  return false;
}

const STDIN_PREFIXES = new Set(['exec', 'sudo', 'doas', 'env', 'command', 'nohup', 'nice', 'time']);

/** awk's program: the first operand, or gawk's `-e`/`--source` text; `stdin` for `-f -`; undefined for a program file. */
function awkProgram(args: readonly ShellWord[]): ShellWord | 'stdin' | undefined {
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as ShellWord;
    const text = arg.text;
    if (text === '--') return args[i + 1];
    if (text === '-f' || text === '-E' || text.startsWith('--file') || text.startsWith('--exec')) {
      const value = text.includes('=') ? text.slice(text.indexOf('=') + 1) : args[i + 1]?.text;
      return value !== undefined && STDIN_FILE.test(value) ? 'stdin' : undefined;
    }
    if (text === '-e' || text === '--source') return args[i + 1];
    if (text.startsWith('--source=')) return { ...arg, text: text.slice('--source='.length) };
    if (text === '-v' || text === '-F' || text === '-i' || text === '-l' || text === '--assign' || text === '--field-separator' || text === '--include' || text === '--load') {
      i++;
      continue;
    }
    if (text.startsWith('-') && text !== '-') continue;
    return arg;
  }
  return undefined;
}

const SSH_VALUE_OPTIONS = new Set(['-b', '-c', '-D', '-E', '-e', '-F', '-I', '-i', '-J', '-L', '-l', '-m', '-O', '-o', '-p', '-Q', '-R', '-S', '-W', '-w', '-B']);
const PARALLEL_VALUE_OPTIONS = new Set(['-j', '-N', '-n', '-S', '-L', '-l', '-P', '-s', '-E', '-I', '-a', '-d', '--jobs', '--sshlogin', '--arg-file', '--delimiter', '--max-args', '--max-lines']);

/** Operands after options; `values` lists options that take the next word. */
function operandsOf(args: readonly ShellWord[], values: ReadonlySet<string>): ShellWord[] {
  const out: ShellWord[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as ShellWord;
    if (arg.text === '--') return [...out, ...args.slice(i + 1)];
    if (out.length === 0 && arg.text.startsWith('-') && arg.text.length > 1) {
      if (values.has(arg.text)) i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/** Programs that run what they read as commands: `at`, `crontab -`, `parallel`, `ssh host`, `su`, `sudo -s`. */
function checkStdinRunner(command: SimpleCommand, name: string, args: readonly ShellWord[]): FloorHit | undefined {
  const texts = args.map((a) => a.text);
  switch (name) {
    case 'at':
    case 'batch':
      return texts.includes('-f') ? undefined : pipeHit(command, `${name} schedules the commands it reads from the pipe`);
    case 'crontab': {
      const operands = operandsOf(args, new Set(['-u']));
      const reads = operands.length === 0 ? !texts.some((t) => /^-[lre]$/.test(t)) : operands[0]?.text === '-';
      return reads ? pipeHit(command, 'crontab installs a schedule it reads from the pipe') : undefined;
    }
    case 'parallel':
      return operandsOf(args, PARALLEL_VALUE_OPTIONS).length === 0 ? pipeHit(command, 'parallel runs each line it reads from the pipe as a command') : undefined;
    case 'ssh':
      return operandsOf(args, SSH_VALUE_OPTIONS).length <= 1 ? pipeHit(command, 'ssh without a command runs a remote shell that reads the pipe') : undefined;
    case 'su':
    case 'runuser':
      return texts.some((t) => t === '-c' || t.startsWith('--command') || t.startsWith('--session-command')) ? undefined : pipeHit(command, `${name} starts a shell that reads the pipe`);
    case 'script':
      return texts.some((t) => t === '-c' || t.startsWith('--command')) ? undefined : pipeHit(command, 'script starts a shell that reads the pipe');
    case 'sudo':
    case 'doas': {
      let shell = false;
      let i = 0;
      for (; i < args.length; i++) {
        const t = (args[i] as ShellWord).text;
        if (t === '--') {
          i++;
          break;
        }
        if (!t.startsWith('-') || t.length === 1) break;
        if (t === '--shell' || t === '--login' || /^-[a-zA-Z]*[si]/.test(t)) shell = true;
        // `-u root`, `-iu root`: a cluster that ends in a value option takes the next word.
        if (/^-[a-zA-Z]*[ugCDhprtUTR]$/.test(t)) i++;
      }
      return shell && i >= args.length ? pipeHit(command, `${name} starts a root shell that reads the pipe`) : undefined;
    }
    default:
      return undefined;
  }
}

/**
 * A wrapper the parser may not unwrap (`pkexec bash`, `env -S 'bash -s'`): a word that may be
 * the wrapped program is one right after the wrapper, or one that follows an option (it may be
 * an option's value); the first plain word after a plain word is an argument and ends the look.
 */
function checkWrapped(command: SimpleCommand, args: readonly ShellWord[], hidden: HiddenCode, line: string): FloorHit | undefined {
  let previousPlain = false;
  let afterOption = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as ShellWord;
    const optionLike = arg.text.startsWith('-') || /^[A-Za-z_][A-Za-z0-9_]*=/.test(arg.text);
    if (optionLike) {
      afterOption = true;
      continue;
    }
    if (!afterOption && previousPlain) return undefined;
    if (!afterOption) previousPlain = true;
    afterOption = false;
    if (arg.static) {
      const words = arg.text.trim().split(/\s+/);
      const name = programName(words[0] ?? '');
      if (SHELLS.has(name) || INTERPRETERS.has(name)) {
        const inner = words.length > 1 ? words.map(literal) : [arg, ...args.slice(i + 1)];
        const nested: SimpleCommand = { ...command, argv: inner };
        return checkFedCode(nested, programOf(inner[0] as ShellWord), inner, hidden, line);
      }
    }
  }
  return undefined;
}

function literal(text: string): ShellWord {
  return { raw: text, text, static: true, glob: false, brace: false, tilde: false };
}

// ---------------------------------------------------------------------------------------------
// Raw-text fallbacks for code the parser could not see into

const SHELL_AND_INTERPRETER_NAMES = [...SHELLS, ...INTERPRETERS.keys()].sort((a, b) => b.length - a.length).map((n) => n.replace(/[.+-]/g, '\\$&')).join('|');

/** `| sh`, `| sudo bash`, `|& python3` in text the parser did not parse. */
const RAW_PIPE = new RegExp(
  String.raw`(?<!\|)\|&?\s*(?:(?:sudo|doas|env|exec|command|nohup|xargs|time|nice|stdbuf)(?:\s+-\S+)*\s+)*(?:[^\s|;&]*\/)?(?:${SHELL_AND_INTERPRETER_NAMES})[\d.]*(?=$|[\s;&|)'"\`])`,
  'i',
);

/** `rm` as a command word in raw text: after a separator, a quote or a `/` (`/bin/rm`), before a blank. */
const RAW_RM_START = /(?<![^\s;&|(){}`'"/\\])rm(?=\s)/g;
const RAW_RECURSIVE = /^(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)$/;
/** An operand that is `/`, the home directory or everything in them, possibly quoted, up to a separator. */
const RAW_RM_TARGET = /^['"]?(?:\/+[./]*\*?|~\/?\*?|\$\{?HOME\}?\/?\*?)['"]?(?=$|[;&|)}`'"])/;
const BLANK_SEPARATED = /\S+/g;

/**
 * `rm -rf /`, `rm -r -f ~`, `rm -fr $HOME/*` in text the parser did not parse: `rm`, option
 * words of which one is recursive, then the first other word is a target. One pass over the
 * words from the right says, for each word, whether the options from there on hold a recursive
 * one and end in a target; each `rm` then looks up the word after it.
 */
function rawRecursiveDelete(text: string): string | undefined {
  if (!text.includes('rm')) return undefined;
  const starts: number[] = [];
  const ends: number[] = [];
  for (const m of text.matchAll(BLANK_SEPARATED)) {
    starts.push(m.index);
    ends.push(m.index + m[0].length);
  }
  // deletes[j]: the options from word j on hold a recursive one and end in a target (its end).
  const recursive = new Array<boolean>(starts.length + 1).fill(false);
  const target = new Array<number>(starts.length + 1).fill(-1);
  for (let j = starts.length - 1; j >= 0; j--) {
    const word = text.slice(starts[j], ends[j]);
    if (word.startsWith('-')) {
      recursive[j] = RAW_RECURSIVE.test(word) || (recursive[j + 1] as boolean);
      target[j] = target[j + 1] as number;
    } else {
      const hit = RAW_RM_TARGET.exec(word);
      target[j] = hit === null ? -1 : (starts[j] as number) + hit[0].length;
    }
  }
  let j = 0;
  for (const m of text.matchAll(RAW_RM_START)) {
    const after = m.index + 2;
    while (j < starts.length && (starts[j] as number) < after) j++;
    const end = target[j] as number;
    if (recursive[j] === true && end !== -1) return text.slice(m.index, end);
  }
  return undefined;
}

/** Signatures in text the parser could not see into (heredoc fed to a shell, unparseable line). */
export function checkRawSignatures(text: string, origin: string): FloorHit | undefined {
  const rm = rawRecursiveDelete(text);
  if (rm !== undefined) return { entry: 'rm_root', reason: `${origin} holds ${shownText(rm)}, a recursive delete of "/" or the home directory${FLOOR_SUFFIX}` };
  const pipe = RAW_PIPE.exec(text)?.[0] ?? rawPipeIntoPattern(text);
  if (pipe !== undefined) return { entry: 'pipe_to_shell', reason: `${origin} holds ${shownText(pipe.trim())}, a pipe into a shell or interpreter${FLOOR_SUFFIX}` };
  return checkForkBomb(text);
}

const PIPE_TARGET = /(?<!\|)\|&?\s*([^\s|;&()<>]+)/g;

/** `| {ba,z}sh`, `| /bin/ba?h`: a piped-into program spelled as a brace or glob, in raw text. */
function rawPipeIntoPattern(text: string): string | undefined {
  const seen = new Set<string>();
  for (const match of text.matchAll(PIPE_TARGET)) {
    const token = match[1] ?? '';
    if ((!token.includes('{') && !hasGlobChars(token)) || seen.has(token)) continue;
    seen.add(token);
    const program = programOf({ raw: token, text: token, static: true, glob: hasGlobChars(token), brace: token.includes('{'), tilde: false });
    if (findName(SHELLS, program) !== undefined || findName(INTERPRETERS.keys(), program) !== undefined) return match[0];
  }
  return undefined;
}
