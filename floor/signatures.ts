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
import { readWord, type WordEnv } from './words.js';

/** Appended to every reason: the floor is not a rule and nothing lifts it. */
export const FLOOR_SUFFIX = '; the floor cannot be lifted by any rule or mode';

const SHOWN_MAX = 160;

/** A command as written, shortened for a reason text. */
function shown(command: SimpleCommand): string {
  const text = command.argv.map((w) => w.raw).join(' ');
  return JSON.stringify(text.length > SHOWN_MAX ? `${text.slice(0, SHOWN_MAX)}…` : text);
}

/** The argv a command really runs: `busybox rm …` runs `rm …`. */
export function effectiveArgv(command: SimpleCommand): readonly ShellWord[] {
  let argv = command.argv;
  while (argv.length > 1 && argv[0]?.static === true && MULTICALL.test(argv[0].text)) argv = argv.slice(1);
  return argv;
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
  const couldBeRm = program.kind === 'dynamic' || program.is('rm');
  if (!couldBeRm) return undefined;
  let recursive = false;
  let options = true;
  const operands: ShellWord[] = [];
  for (const arg of argv.slice(1)) {
    if (options && arg.static && arg.text === '--') options = false;
    else if (options && arg.static && arg.text.startsWith('-') && arg.text.length > 1) recursive ||= isRecursiveOption(arg.text);
    else operands.push(arg);
  }
  if (!recursive) return undefined;
  for (const operand of operands) {
    for (const path of deletionPaths(operand, env, resolve)) {
      const target = deletionTarget(ctx, path);
      if (target !== undefined) {
        return { entry: target.entry, reason: `${shown(command)} recursively deletes ${target.what}${FLOOR_SUFFIX}` };
      }
    }
  }
  return undefined;
}

const FIND_DESTRUCTIVE_EXEC = new Set(['rm', 'shred', 'unlink', 'srm']);

/** `find / -delete`, `find ~ -exec rm -rf {} +`: recursive deletion by another name. */
function checkFindDelete(ctx: FloorContext, command: SimpleCommand, argv: readonly ShellWord[], env: WordEnv, resolve: (text: string) => readonly string[]): FloorHit | undefined {
  const args = argv.slice(1);
  let destructive = false;
  for (let i = 0; i < args.length; i++) {
    const text = (args[i] as ShellWord).text;
    if (text === '-delete') destructive = true;
    if (/^-(?:exec|execdir|ok|okdir)$/.test(text)) {
      const next = args[i + 1];
      if (next !== undefined && FIND_DESTRUCTIVE_EXEC.has(programName(next.text))) destructive = true;
    }
  }
  if (!destructive) return undefined;
  const starts: ShellWord[] = [];
  for (const arg of args) {
    if (/^[-(!),]/.test(arg.text)) break;
    starts.push(arg);
  }
  const roots = starts.length === 0 ? ['.'] : [];
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

/** A fork bomb anywhere in the line, quoted or not: its text is never needed. */
export function checkForkBomb(line: string): FloorHit | undefined {
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

/** Judges where a shell or interpreter gets its program from. */
function judgeSource(command: SimpleCommand, name: string, source: ProgramSource): FloorHit | undefined {
  const fed = stdinFromCommand(command);
  switch (source.kind) {
    case 'stdin':
      return fed ? pipeHit(command, `${name} reads its program from another command's output`) : undefined;
    case 'operand':
      if (isStdinOperand(source.operand)) {
        return pipeHit(command, `${name} runs ${JSON.stringify(source.operand.raw)}, another command's output or standard input`);
      }
      return undefined;
    case 'inline':
      if (source.code === undefined) return command.pipedInto ? pipeHit(command, `${name} -c takes its code from the pipe (through xargs)`) : undefined;
      if (isCommandOutput(source.code)) return pipeHit(command, `${name} runs code that another command prints`);
      if (fed && STDIN_EVAL.test(source.code.text)) return pipeHit(command, `${name} evaluates what it reads from the pipe`);
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
export function checkFedCode(command: SimpleCommand, program: Program, argv: readonly ShellWord[], hidden: HiddenCode, line: string): FloorHit | undefined {
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
    return judgeSource(command, shell, source);
  }
  const interpreter = program.kind === 'static' ? (INTERPRETERS.has(program.name) ? program.name : undefined) : findName(INTERPRETERS.keys(), program);
  if (interpreter !== undefined) {
    const source = interpreterSource(interpreter, args);
    if (source.kind === 'inline' && source.code !== undefined) hidden.code.push(source.code.text);
    if (heredoc && source.kind === 'stdin') hidden.texts.push(line);
    return judgeSource(command, interpreter, source);
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
  if (AWK.has(name)) {
    const program = awkProgram(args);
    if (program !== undefined) hidden.code.push(program.text);
    return undefined;
  }
  if (name === 'sed') {
    for (const arg of args) if (!arg.text.startsWith('-')) hidden.texts.push(arg.text);
    return undefined;
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
const RUNS_CODE: ReadonlySet<string> = new Set([...SHELLS, ...INTERPRETERS.keys(), 'source', '.', 'eval', 'awk', 'gawk', 'mawk', 'nawk', 'sed', ...STDIN_RUNNERS, ...EXTRA_WRAPPERS]);

function findName(names: Iterable<string>, program: Program): string | undefined {
  for (const name of names) if (program.is(name)) return name;
  return undefined;
}


function awkProgram(args: readonly ShellWord[]): ShellWord | undefined {
  for (let i = 0; i < args.length; i++) {
    const text = (args[i] as ShellWord).text;
    if (text === '-f' || text.startsWith('--file')) return undefined;
    if (text === '-v' || text === '-F') {
      i++;
      continue;
    }
    if (text.startsWith('-')) continue;
    return args[i];
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

/** `rm -rf /`, `rm -r -f ~`, `rm -fr $HOME/*` in text the parser did not parse. */
const RAW_RM =
  /(?<![^\s;&|(){}`'"/\\])rm\s+(?:-[^\s]*\s+)*?(?:-[a-zA-Z]*[rR][a-zA-Z]*|--recursive)(?:\s+-[^\s]*)*\s+(?:--\s+)?['"]?(?:\/+[./]*\*?|~\/?\*?|\$\{?HOME\}?\/?\*?)['"]?(?=$|[\s;&|)}`'"])/m;

/** Signatures in text the parser could not see into (heredoc fed to a shell, unparseable line). */
export function checkRawSignatures(text: string, origin: string): FloorHit | undefined {
  const rm = RAW_RM.exec(text);
  if (rm !== null) return { entry: 'rm_root', reason: `${origin} holds ${JSON.stringify(rm[0].trim())}, a recursive delete of "/" or the home directory${FLOOR_SUFFIX}` };
  const pipe = RAW_PIPE.exec(text)?.[0] ?? rawPipeIntoPattern(text);
  if (pipe !== undefined) return { entry: 'pipe_to_shell', reason: `${origin} holds ${JSON.stringify(pipe.trim())}, a pipe into a shell or interpreter${FLOOR_SUFFIX}` };
  return checkForkBomb(text);
}

const PIPE_TARGET = /(?<!\|)\|&?\s*([^\s|;&()<>]+)/g;

/** `| {ba,z}sh`, `| /bin/ba?h`: a piped-into program spelled as a brace or glob, in raw text. */
function rawPipeIntoPattern(text: string): string | undefined {
  for (const match of text.matchAll(PIPE_TARGET)) {
    const token = match[1] ?? '';
    if (!token.includes('{') && !hasGlobChars(token)) continue;
    const program = programOf({ raw: token, text: token, static: true, glob: hasGlobChars(token), brace: token.includes('{'), tilde: false });
    if (findName(SHELLS, program) !== undefined || findName(INTERPRETERS.keys(), program) !== undefined) return match[0];
  }
  return undefined;
}
