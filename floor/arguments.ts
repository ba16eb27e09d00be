/**
 * Which words of a command are surely text and not paths. The floor treats every argument as
 * a possible path — it errs toward denying — except where the program is known never to open
 * it: what `echo`/`printf` print, a `git commit -m` message, grep's pattern, and the value of
 * an exclusion option (`--exclude-dir=.git`, `rg -g '!.git'`, `find -not -path './.git/*'`),
 * which keeps a protected name out rather than in. Shell code (`bash -c CODE`, `eval ARGS`,
 * `su -c CODE`) is not a path either: the parser turns it into nested commands, which are
 * checked, and code it cannot parse is scanned as raw text (signatures.ts).
 * Everything else is checked.
 */
import type { ShellWord } from '../src/shared/types.js';
import { SHELLS, shellSource, type Program } from './programs.js';

const PRINTERS = new Set(['echo', 'printf']);
const GREPS = new Set(['grep', 'egrep', 'fgrep', 'zgrep', 'zegrep', 'zfgrep', 'pcregrep', 'pcre2grep', 'rg', 'ag', 'ack', 'ack-grep']);

interface OptionTable {
  /** Short option letters that take a value. */
  readonly short: string;
  readonly long: ReadonlySet<string>;
  /** Options whose value is the pattern (so no positional pattern follows). */
  readonly pattern: ReadonlySet<string>;
  /** Options whose value is a pattern file (so no positional pattern follows either). */
  readonly patternFile: ReadonlySet<string>;
}

const GREP_OPTIONS: OptionTable = {
  short: 'efmABCdD',
  long: new Set(['--regexp', '--file', '--max-count', '--after-context', '--before-context', '--context', '--directories', '--devices', '--include', '--exclude', '--exclude-dir', '--exclude-from', '--label', '--binary-files']),
  pattern: new Set(['-e', '--regexp']),
  patternFile: new Set(['-f', '--file']),
};

const RG_OPTIONS: OptionTable = {
  short: 'efgtTmABCjMrEd',
  long: new Set([
    '--regexp', '--file', '--glob', '--iglob', '--type', '--type-not', '--max-count', '--after-context', '--before-context', '--context',
    '--threads', '--max-columns', '--replace', '--encoding', '--max-depth', '--type-add', '--type-clear', '--ignore-file', '--pre', '--pre-glob',
    '--sort', '--sortr', '--colors', '--context-separator', '--field-match-separator', '--field-context-separator', '--path-separator',
    '--max-filesize', '--dfa-size-limit', '--regex-size-limit', '--engine',
  ]),
  pattern: new Set(['-e', '--regexp']),
  patternFile: new Set(['-f', '--file']),
};

const AG_OPTIONS: OptionTable = {
  short: 'ABCmG',
  long: new Set(['--after', '--before', '--context', '--max-count', '--file-search-regex', '--ignore', '--ignore-dir', '--depth', '--path-to-ignore']),
  pattern: new Set(),
  patternFile: new Set(),
};

/** Exclusion options whose value keeps names out: `--exclude=.git`, `--exclude-dir .git`. */
const EXCLUDE_OPTIONS = new Set(['--exclude', '--exclude-dir', '--ignore', '--ignore-dir', '--ignore-directory']);
const EXCLUDE_ATTACHED = /^--(?:exclude|exclude-dir|ignore|ignore-dir|ignore-directory)=/;
const FIND_NAME_TESTS = new Set(['-path', '-ipath', '-name', '-iname', '-wholename', '-iwholename', '-regex', '-iregex']);
const GIT_PATHSPEC_EXCLUDE = /^:(?:[!^]|\([^)]*\bexclude\b[^)]*\))/;
const GIT_MESSAGE_COMMANDS = new Set(['commit', 'tag', 'merge', 'stash', 'notes']);
const GIT_GLOBAL_VALUES = new Set(['-C', '-c', '--git-dir', '--work-tree', '--namespace', '--config-env', '--super-prefix']);

/**
 * The argv indexes of `command` that are surely text. Index 0 (the program) is never listed.
 * `argv` is the command's effective argv (after `busybox`).
 */
export function textIndexes(program: Program, argv: readonly ShellWord[]): ReadonlySet<number> {
  const text = new Set<number>();
  if (program.kind === 'static') {
    const name = program.name;
    if (PRINTERS.has(name)) {
      for (let i = 1; i < argv.length; i++) text.add(i);
      return text;
    }
    if (SHELLS.has(name)) {
      const source = shellSource(argv.slice(1));
      if (source.kind === 'inline' && source.code !== undefined) text.add(argv.indexOf(source.code));
    } else if (name === 'eval') for (let i = 1; i < argv.length; i++) text.add(i);
    else if (name === 'su' || name === 'runuser') valueAfter(argv, (t) => t === '-c' || t === '--command', text);
    else if (name === 'git') gitText(argv, text);
    else if (GREPS.has(name)) grepText(argv, 1, name === 'rg' ? RG_OPTIONS : name === 'ag' || name.startsWith('ack') ? AG_OPTIONS : GREP_OPTIONS, name === 'rg', text);
    else if (name === 'find') findText(argv, text);
    else if (name === 'tree') valueAfter(argv, (t) => t === '-I', text);
    else if (name === 'fd' || name === 'fdfind') valueAfter(argv, (t) => t === '-E' || t === '--exclude', text);
  }
  for (let i = 1; i < argv.length; i++) {
    const t = (argv[i] as ShellWord).text;
    if (EXCLUDE_ATTACHED.test(t)) text.add(i);
    else if (EXCLUDE_OPTIONS.has(t) && i + 1 < argv.length) text.add(i + 1);
  }
  return text;
}

function valueAfter(argv: readonly ShellWord[], isOption: (text: string) => boolean, text: Set<number>): void {
  for (let i = 1; i + 1 < argv.length; i++) if (isOption((argv[i] as ShellWord).text)) text.add(i + 1);
}

/** grep's first operand is its pattern, unless `-e` or `-f` gave one; `-e` values are patterns. */
function grepText(argv: readonly ShellWord[], from: number, table: OptionTable, isRg: boolean, text: Set<number>): void {
  let patternGiven = false;
  let firstOperand = -1;
  const value = (option: string, index: number): void => {
    if (table.pattern.has(option)) {
      patternGiven = true;
      text.add(index);
    } else if (table.patternFile.has(option)) {
      patternGiven = true;
    } else if (isRg && (option === '-g' || option === '--glob' || option === '--iglob')) {
      // `rg -g '!.git'` excludes; `rg -g .env` includes and stays a path.
      const word = argv[index];
      if (word !== undefined && (word.text.startsWith('!') || word.text.startsWith(`${option}=!`) || /^-g!/.test(word.text))) text.add(index);
    }
  };
  for (let i = from; i < argv.length; i++) {
    const t = (argv[i] as ShellWord).text;
    if (t === '--') {
      if (firstOperand === -1 && i + 1 < argv.length) firstOperand = i + 1;
      break;
    }
    if (isRg && (t === '--files' || t === '--type-list')) patternGiven = true;
    if (t.startsWith('--')) {
      const eq = t.indexOf('=');
      const name = eq === -1 ? t : t.slice(0, eq);
      if (eq !== -1) value(name, i);
      else if (table.long.has(name)) {
        value(name, i + 1);
        i++;
      }
      continue;
    }
    if (t.startsWith('-') && t.length > 1) {
      for (let k = 1; k < t.length; k++) {
        const letter = t.charAt(k);
        if (!table.short.includes(letter)) continue;
        if (k < t.length - 1) value(`-${letter}`, i);
        else {
          value(`-${letter}`, i + 1);
          i++;
        }
        break;
      }
      continue;
    }
    if (firstOperand === -1) firstOperand = i;
  }
  if (!patternGiven && firstOperand !== -1) text.add(firstOperand);
}

/** `find -not -path X`, `find ! -name X`, `find -path X -prune`: X is kept out. */
function findText(argv: readonly ShellWord[], text: Set<number>): void {
  for (let i = 1; i < argv.length; i++) {
    const t = (argv[i] as ShellWord).text;
    if (!FIND_NAME_TESTS.has(t)) continue;
    const before = argv[i - 1]?.text;
    const after = argv[i + 2]?.text;
    if (before === '-not' || before === '!' || after === '-prune') text.add(i + 1);
  }
}

/** `git commit -m MESSAGE` (and tag, merge, stash, notes); pathspec exclusions `':!.env'`; `git grep`. */
function gitText(argv: readonly ShellWord[], text: Set<number>): void {
  let sub = -1;
  for (let i = 1; i < argv.length; i++) {
    const t = (argv[i] as ShellWord).text;
    if (GIT_PATHSPEC_EXCLUDE.test(t)) text.add(i);
    if (sub !== -1) continue;
    if (GIT_GLOBAL_VALUES.has(t)) i++;
    else if (!t.startsWith('-')) sub = i;
  }
  if (sub === -1) return;
  const name = (argv[sub] as ShellWord).text;
  if (name === 'grep') {
    grepText(argv, sub + 1, GREP_OPTIONS, false, text);
    return;
  }
  if (!GIT_MESSAGE_COMMANDS.has(name)) return;
  for (let i = sub + 1; i < argv.length; i++) {
    const t = (argv[i] as ShellWord).text;
    if (t === '--') break;
    if (t === '--message' || /^-[a-zA-Z]*m$/.test(t)) text.add(i + 1);
    else if (t.startsWith('--message=') || /^-m./.test(t)) text.add(i);
  }
}

/** Words bash would hide from the parser's walk: `for x in WORDS`, `select x in WORDS`. */
const FOR_LIST = /\b(?:for|select)\s+[A-Za-z_][A-Za-z0-9_]*\s+in\s+([^;\n]{1,4096})/g;
/** The longest `[[ … ]]` or `case … in` text taken. */
const MAX_LIST = 4096;

/** Texts of word lists the parser does not report, for lines with control flow: `for … in`, `[[ … ]]`, `case WORD in`. */
export function hiddenWordLists(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(FOR_LIST)) if (m[1] !== undefined) out.push(m[1]);
  out.push(...delimited(line, /\[\[\s/g, /\s\]\]/g, /\n/g));
  out.push(...delimited(line, /\bcase\s+/g, /\s+in\b/g, /[\n;]/g));
  return out;
}

/**
 * The texts between each `open` and the first `close` after it (at least one character, at most
 * MAX_LIST, no `stop` character between), as `open(.{1,MAX_LIST}?)close` would find them, in
 * one pass: the next `close` and `stop` are searched forward only, and remembered.
 */
function delimited(line: string, open: RegExp, close: RegExp, stop: RegExp): string[] {
  const out: string[] = [];
  const next = (pattern: RegExp): ((from: number) => { at: number; end: number }) => {
    let found = { at: -2, end: -2 };
    return (from) => {
      if (found.at === -1 || found.at >= from) return found;
      pattern.lastIndex = from;
      const m = pattern.exec(line);
      found = m === null ? { at: -1, end: -1 } : { at: m.index, end: m.index + m[0].length };
      return found;
    };
  };
  const nextClose = next(close);
  const nextStop = next(stop);
  open.lastIndex = 0;
  for (let m = open.exec(line); m !== null; m = open.exec(line)) {
    const from = m.index + m[0].length;
    const closing = nextClose(from + 1);
    const stopAt = nextStop(from).at;
    if (closing.at !== -1 && (stopAt === -1 || stopAt >= closing.at) && closing.at - from <= MAX_LIST) {
      out.push(line.slice(from, closing.at));
      open.lastIndex = closing.end;
    } else {
      open.lastIndex = m.index + 1;
    }
  }
  return out;
}
