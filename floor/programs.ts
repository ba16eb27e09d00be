/**
 * Which program a command runs, as the floor sees it, and how shells and interpreters take
 * their program text: inline (`-c`, `-e`), from a script operand, or from standard input.
 * Program names are compared lower-cased: on a case-insensitive file system `BASH` runs bash.
 */
import type { ShellWord } from '../src/shared/types.js';
import { compileGlob, expandBraces, globMatches, hasGlobChars, mayHaveBraces } from './glob.js';

/** The base name of a program path, lower-cased, version suffix removed: `/usr/bin/Python3.11` → `python`. */
export function programName(text: string): string {
  const slash = text.lastIndexOf('/');
  const base = (slash === -1 ? text : text.slice(slash + 1)).toLowerCase();
  return base.replace(VERSION_SUFFIX, '');
}

const VERSION_SUFFIX = /(?<=[a-z])-?[\d.]+$/;

/** How a command's program word is known. */
export interface Program {
  /** `static` names one program; `pattern` is a glob or brace; `dynamic` is computed at run time. */
  readonly kind: 'static' | 'pattern' | 'dynamic';
  /** The program name (static), or the word's text. */
  readonly name: string;
  /** Could this word run the program `name`? */
  is(name: string): boolean;
}

const NAME_TOKENS = /[a-z][a-z0-9_+-]*/g;

/** Identifies a command's program word. */
export function programOf(word: ShellWord): Program {
  if (!word.static) {
    const lower = word.text.toLowerCase();
    const tokens = new Set<string>();
    for (const token of lower.match(NAME_TOKENS) ?? []) tokens.add(token.replace(VERSION_SUFFIX, ''));
    // `$SHELL`, `$0` and `$(which bash)` run a shell; `$PAGER` is left to the gate.
    const shellLike = tokens.has('shell') || lower.includes('$0') || lower.includes('${0');
    return { kind: 'dynamic', name: word.text, is: (name) => tokens.has(name) || (shellLike && SHELLS.has(name)) };
  }
  const name = programName(word.text);
  if (word.glob && hasGlobChars(name)) {
    const tokens = compileGlob(name);
    return { kind: 'pattern', name, is: (candidate) => globMatches(tokens, candidate, false) };
  }
  if (word.brace || mayHaveBraces(word.text)) {
    // `{ba,z}sh` runs `bash zsh`: the first word is the program, but any could be meant.
    const names = (expandBraces(word.text) ?? [word.text]).map(programName);
    return { kind: 'pattern', name, is: (candidate) => names.includes(candidate) };
  }
  return { kind: 'static', name, is: (candidate) => candidate === name };
}

/** Shells: they run a script operand, `-c` code, or what they read on standard input. */
export const SHELLS: ReadonlySet<string> = new Set([
  'sh', 'bash', 'rbash', 'zsh', 'dash', 'ksh', 'ksh93', 'mksh', 'pdksh', 'oksh', 'lksh', 'ash', 'hush',
  'yash', 'posh', 'fish', 'csh', 'tcsh', 'nu', 'xonsh', 'elvish', 'ion', 'rc', 'es', 'osh', 'ysh',
]);

/** How an interpreter is given its program. */
interface InterpreterSpec {
  /** Options (or short letters, for clusters) that give the program inline. */
  readonly code: readonly string[];
  /** Options that take the next word as a value that is not the program. */
  readonly values: readonly string[];
  /** Options after which a module or file name is the program (`python -m json.tool`). */
  readonly named?: readonly string[];
}

const PYTHON: InterpreterSpec = { code: ['-c'], values: ['-W', '-X', '--check-hash-based-pycs'], named: ['-m'] };
const NODE: InterpreterSpec = { code: ['-e', '--eval', '-p', '--print'], values: ['-r', '--require', '--import', '--loader', '--experimental-loader', '-C', '--conditions', '--input-type', '--title', '--env-file'] };

/** Interpreters that read their program from standard input when given none. */
export const INTERPRETERS: ReadonlyMap<string, InterpreterSpec> = new Map([
  ['python', PYTHON],
  ['pypy', PYTHON],
  ['ipython', PYTHON],
  ['perl', { code: ['-e', '-E'], values: ['-I', '-M', '-m'] }],
  ['ruby', { code: ['-e'], values: ['-I', '-r', '-C', '-E', '--encoding'] }],
  ['irb', { code: [], values: ['-I', '-r'] }],
  ['node', NODE],
  ['nodejs', NODE],
  ['bun', { code: ['-e', '--eval', '-p', '--print'], values: ['-r', '--preload'] }],
  ['deno', { code: ['eval'], values: [] }],
  ['tsx', NODE],
  ['ts-node', NODE],
  ['php', { code: ['-r', '-B', '-R', '-E', '-F'], values: ['-c', '-d', '-t', '-z'], named: ['-f'] }],
  ['lua', { code: ['-e'], values: ['-l'] }],
  ['luajit', { code: ['-e'], values: ['-l'] }],
  ['rscript', { code: ['-e'], values: [] }],
  ['r', { code: ['-e'], values: [], named: ['-f', '--file'] }],
  ['osascript', { code: ['-e'], values: ['-l', '-s'] }],
  ['pwsh', { code: ['-c', '-command', '-encodedcommand', '-ec', '-e'], values: ['-workingdirectory', '-wd', '-executionpolicy', '-ex', '-configurationname', '-outputformat', '-of', '-inputformat', '-if', '-settingsfile', '-windowstyle'], named: ['-file', '-f'] }],
  ['powershell', { code: ['-c', '-command', '-encodedcommand', '-ec', '-e'], values: ['-executionpolicy', '-ex', '-outputformat', '-inputformat', '-windowstyle'], named: ['-file', '-f'] }],
  ['tclsh', { code: [], values: ['-encoding'] }],
  ['wish', { code: [], values: ['-encoding'] }],
  ['expect', { code: ['-c'], values: [], named: ['-f'] }],
  ['julia', { code: ['-e', '-E', '--eval', '--print'], values: ['-J', '-t', '-p', '--project'] }],
  ['guile', { code: ['-c'], values: ['-l', '-e', '-L'], named: ['-s'] }],
  ['racket', { code: ['-e'], values: [], named: ['-f', '-t', '-r'] }],
  ['sbcl', { code: ['--eval'], values: ['--load', '--core'], named: ['--script'] }],
  ['groovy', { code: ['-e'], values: [] }],
  ['scala', { code: ['-e'], values: [] }],
  ['elixir', { code: ['-e', '--eval'], values: [] }],
  ['jshell', { code: [], values: [] }],
  ['ghci', { code: ['-e'], values: [] }],
  ['swift', { code: [], values: [] }],
]);

/** Programs that run what is piped into them as commands, though they are not shells. */
export const STDIN_RUNNERS: ReadonlySet<string> = new Set(['at', 'batch', 'crontab', 'parallel', 'ssh', 'su', 'runuser', 'script', 'sudo', 'doas']);

/** Wrappers the parser may not unwrap: the floor looks for a shell among their words. */
export const EXTRA_WRAPPERS: ReadonlySet<string> = new Set([
  'pkexec', 'unshare', 'nsenter', 'systemd-run', 'run0', 'bwrap', 'proot', 'fakeroot', 'fakechroot', 'chpst', 'setpriv', 'sg',
  'rlwrap', 'torsocks', 'proxychains', 'proxychains4', 'catchsegv', 'valgrind', 'faketime', 'env', 'sudo', 'doas', 'coproc',
]);

/** Where a shell or interpreter takes its program from. */
export type ProgramSource =
  | { readonly kind: 'inline'; readonly code: ShellWord | undefined }
  | { readonly kind: 'stdin' }
  | { readonly kind: 'operand'; readonly operand: ShellWord };

const STDIN_PATHS = /^(?:-|\/dev\/stdin|\/dev\/fd\/\d+|\/proc\/(?:self|thread-self|\d+)\/fd\/\d+)$/;

/** True when a script operand means "read the program from standard input or a descriptor". */
export function isStdinOperand(word: ShellWord): boolean {
  if (!word.static) return word.raw.startsWith('<(') || word.raw.startsWith('>(');
  return STDIN_PATHS.test(word.text);
}

const SHELL_VALUE_OPTIONS = new Set(['-o', '+o', '-O', '+O', '--rcfile', '--init-file', '-p', '--profile', '-C', '--init-command']);

/** How a shell (`args` after the program) takes its program. */
export function shellSource(args: readonly ShellWord[]): ProgramSource {
  let inline = false;
  let stdin = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as ShellWord;
    const text = arg.text;
    if (text === '--' || text === '-') {
      const operand = args[i + 1];
      if (text === '-' || operand === undefined) return inline ? { kind: 'inline', code: operand } : { kind: 'stdin' };
      return inline ? { kind: 'inline', code: operand } : stdin ? { kind: 'stdin' } : { kind: 'operand', operand };
    }
    if (text.startsWith('--command') || text === '--commands') {
      if (text.includes('=')) return { kind: 'inline', code: arg };
      inline = true;
      continue;
    }
    if (SHELL_VALUE_OPTIONS.has(text)) {
      i++;
      continue;
    }
    if (/^[-+][A-Za-z]+$/.test(text)) {
      if (text.startsWith('-') && text.includes('c')) inline = true;
      if (text.startsWith('-') && text.includes('s')) stdin = true;
      continue;
    }
    if (text.startsWith('--')) continue;
    if (inline) return { kind: 'inline', code: arg };
    return stdin ? { kind: 'stdin' } : { kind: 'operand', operand: arg };
  }
  return inline ? { kind: 'inline', code: undefined } : { kind: 'stdin' };
}

/** How an interpreter (`args` after the program) takes its program. */
export function interpreterSource(name: string, args: readonly ShellWord[]): ProgramSource {
  const spec = INTERPRETERS.get(name);
  if (spec === undefined) return { kind: 'stdin' };
  if (name === 'deno') {
    const sub = args[0]?.text;
    if (sub === 'eval') return { kind: 'inline', code: args[1] };
    if (sub === 'run') return interpreterSource('tsx', args.slice(1));
    return args.length === 0 ? { kind: 'stdin' } : { kind: 'operand', operand: args[0] as ShellWord };
  }
  const lowerCode = spec.code.map((c) => c.toLowerCase());
  const lowerNamed = (spec.named ?? []).map((c) => c.toLowerCase());
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as ShellWord;
    const text = arg.text;
    const option = name === 'pwsh' || name === 'powershell' ? text.toLowerCase() : text;
    const bare = option.split('=')[0] ?? option;
    if (text === '--') {
      const operand = args[i + 1];
      return operand === undefined ? { kind: 'stdin' } : { kind: 'operand', operand };
    }
    if (text === '-') return { kind: 'stdin' };
    if (!text.startsWith('-')) return { kind: 'operand', operand: arg };
    if (lowerCode.includes(bare.toLowerCase()) && (name === 'pwsh' || name === 'powershell' || spec.code.includes(bare))) {
      if (option.includes('=')) return { kind: 'inline', code: arg };
      const code = args[i + 1];
      // `pwsh -Command -` reads commands from standard input.
      if (code?.text === '-') return { kind: 'stdin' };
      return { kind: 'inline', code };
    }
    if (lowerNamed.includes(bare.toLowerCase())) {
      const operand = option.includes('=') ? arg : args[i + 1];
      if (operand === undefined) return { kind: 'stdin' };
      return { kind: 'operand', operand };
    }
    if (spec.values.includes(bare)) {
      if (!option.includes('=')) i++;
      continue;
    }
    // A short cluster such as perl's `-lne CODE` or python's `-Bc CODE`; a letter that takes a
    // value ends it (`ruby -rset`, `perl -Mstrict`). PowerShell's options are words, not letters.
    if (/^-[A-Za-z0-9]+$/.test(text) && name !== 'pwsh' && name !== 'powershell') {
      const found = clusterSource(text, spec, args[i + 1]);
      if (found === 'skip-next') i++;
      else if (found !== undefined) return found;
    }
  }
  return { kind: 'stdin' };
}

/** Reads one short-option cluster: inline code, a named program, a value to skip, or nothing. */
function clusterSource(cluster: string, spec: InterpreterSpec, next: ShellWord | undefined): ProgramSource | 'skip-next' | undefined {
  const letters = cluster.slice(1);
  for (let k = 0; k < letters.length; k++) {
    const option = `-${letters.charAt(k)}`;
    const last = k === letters.length - 1;
    if (spec.code.includes(option)) return { kind: 'inline', code: last ? next : literalWord(cluster) };
    if (spec.named?.includes(option) === true) {
      if (!last) return undefined;
      return next === undefined ? { kind: 'stdin' } : { kind: 'operand', operand: next };
    }
    if (spec.values.includes(option)) return last ? 'skip-next' : undefined;
  }
  return undefined;
}

function literalWord(text: string): ShellWord {
  return { raw: text, text, static: true, glob: false, brace: false, tilde: false };
}
