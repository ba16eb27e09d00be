/**
 * The floor: the hard-coded deny list that no mode, rule, flag or setting lifts (DESIGN.md
 * §4.4). Pure — no file system, no environment: everything it knows comes in a FloorContext,
 * and the gate resolves symlinks and calls floorCheckPath again on what they point to.
 */
import type { FloorContext, FloorHit, ShellAnalysis, ShellRedirect, ShellWord, SimpleCommand } from '../src/shared/types.js';
import { hiddenWordLists, textIndexes } from './arguments.js';
import { hasGlobChars } from './glob.js';
import { normalizePath, segmentsOf } from './paths.js';
import { programOf, type Program } from './programs.js';
import { checkGlobPath, checkLiteralPath, protectedName, protectedNameForGlob, type PathFinding } from './protected.js';
import { FLOOR_SUFFIX, checkFedCode, checkForkBomb, checkRawSignatures, checkRecursiveDelete, effectiveArgv, type HiddenCode } from './signatures.js';
import { piecesOf, readText, readWord, type WordEnv, type WordReading } from './words.js';

/** Checks one path the gate is about to read, write or list (or a command argument's resolved form). */
export function floorCheckPath(ctx: FloorContext, absolutePath: string): FloorHit | undefined {
  // Normalising again costs little and means a caller's slip cannot open a gap.
  const path = normalizePath(absolutePath, { home: ctx.home, cwd: ctx.cwd });
  // Command arguments reach here resolved but unexpanded (`/etc-link/pass*` → `/etc/pass*`),
  // so a path with glob characters is also read as the glob it may be.
  const found = checkLiteralPath(ctx, path) ?? (hasGlobChars(path) ? checkGlobPath(ctx, path, false) : undefined);
  return found === undefined ? undefined : { entry: found.entry, reason: `${JSON.stringify(path)} is ${found.what}${FLOOR_SUFFIX}` };
}

/**
 * Checks a parsed command line: every simple command, top-level and nested, for the floor's
 * command signatures, and every argument, redirect target and assignment for a protected path.
 */
export function floorCheckCommand(ctx: FloorContext, analysis: ShellAnalysis): FloorHit | undefined {
  const bomb = checkForkBomb(analysis.line);
  if (bomb !== undefined) return bomb;
  const scan = createScan(ctx, analysis);
  const judged = judgeCommands(scan, analysis);
  if (judged.hit !== undefined) return judged.hit;
  for (const text of judged.hidden.texts) {
    const hit = checkRawSignatures(text, 'text the parser could not see into');
    if (hit !== undefined) return hit;
  }
  for (const code of judged.hidden.code) {
    const hit = checkRawSignatures(code, 'inline interpreter code');
    if (hit !== undefined) return hit;
  }
  let checked = 0;
  const paths = new Set<string>();
  const hit = visitPaths(scan, judged.hidden, (candidate) => {
    if (!candidate.reading.namesOnly && paths.size < MAX_CANDIDATES) paths.add(candidate.path);
    if (++checked > MAX_CHECKED_PATHS) {
      return { entry: 'unchecked_line', reason: `the line names more than ${MAX_CHECKED_PATHS} possible paths, more than the floor checks; it is denied whole${FLOOR_SUFFIX}` };
    }
    const found = checkCandidate(scan, candidate);
    if (found === undefined) return undefined;
    const entry = found.entry === 'block_device' ? (candidate.redirect ? 'block_device_redirect' : 'block_device_argument') : 'protected_argument';
    return { entry, reason: `${describe(candidate.source)} names ${JSON.stringify(candidate.path)}, which is ${found.what}${FLOOR_SUFFIX}` };
  });
  if (hit !== undefined) return hit === STOP ? undefined : hit;
  // The gate asks for the candidates of a line that passed next: they are already known.
  remembered.set(analysis, { home: ctx.home, cmdopHome: ctx.cmdopHome, cwd: ctx.cwd, paths: [...paths] });
  return undefined;
}

/** Candidates found while checking a line, by the (frozen) analysis they came from. */
const remembered = new WeakMap<ShellAnalysis, { home: string; cmdopHome: string; cwd: string | undefined; paths: readonly string[] }>();

/**
 * The absolute normalised paths a command's arguments, redirect targets and assignments name
 * (with `~`, `$HOME`, braces and relative forms resolved), for the gate to follow symlinks in
 * and check again with floorCheckPath. At most MAX_CANDIDATES, in order of appearance.
 */
export function commandPathCandidates(ctx: FloorContext, analysis: ShellAnalysis): string[] {
  const known = remembered.get(analysis);
  if (known?.home === ctx.home && known.cmdopHome === ctx.cmdopHome && known.cwd === ctx.cwd) return [...known.paths];
  const scan = createScan(ctx, analysis);
  const judged = judgeCommands(scan, analysis);
  const out = new Set<string>();
  visitPaths(scan, judged.hidden, (candidate) => {
    if (!candidate.reading.namesOnly) out.add(candidate.path);
    return out.size >= MAX_CANDIDATES ? STOP : undefined;
  });
  return [...out];
}

/** How many candidate paths commandPathCandidates returns at most; a caller that gets this many knows it may have been cut. */
export const MAX_CANDIDATES = 256;
/** Past this many candidate checks the line is denied: a line must not hide a path behind volume. */
const MAX_CHECKED_PATHS = 10_000;
/** How many extra working directories (`cd X && …`) relative arguments are also taken against. */
const MAX_EXTRA_BASES = 4;

const DOTGLOB = /\b(?:dotglob|globignore|glob_?dots)\b/i;

/** A command with what every check needs computed once. */
interface Prepared {
  readonly command: SimpleCommand;
  /** The argv it really runs (`busybox rm …` → `rm …`). */
  readonly argv: readonly ShellWord[];
  readonly program: Program;
}

interface Scan {
  readonly ctx: FloorContext;
  readonly commands: readonly Prepared[];
  readonly env: WordEnv;
  /** Directories a relative argument may be taken against: the cwd, then `cd` targets in the line. */
  readonly bases: readonly string[];
  /** The line turns bash's dotglob on (or zsh's globdots): `*` matches dotfiles. */
  readonly dotOk: boolean;
}

function createScan(ctx: FloorContext, analysis: ShellAnalysis): Scan {
  const cwd = ctx.cwd ?? ctx.home;
  const env: WordEnv = { home: ctx.home, cwd, cmdopHome: ctx.cmdopHome };
  const bases = [cwd];
  const commands: Prepared[] = [];
  for (const command of analysis.commands) {
    const argv = effectiveArgv(command);
    const program = argv[0];
    if (program === undefined) continue;
    commands.push({ command, argv, program: programOf(program) });
    if (!program.static || (program.text !== 'cd' && program.text !== 'pushd')) continue;
    const target = argv.slice(1).find((w) => !w.text.startsWith('-') || w.text === '-');
    const texts = target === undefined ? [ctx.home] : readWord(target, env).filter((r) => !r.namesOnly && !r.glob && r.text !== '-').map((r) => r.text);
    for (const text of texts) {
      const base = normalizePath(text, { home: ctx.home, cwd });
      if (!bases.includes(base) && bases.length <= MAX_EXTRA_BASES) bases.push(base);
    }
  }
  return { ctx, commands, env, bases, dotOk: DOTGLOB.test(analysis.line) };
}

/** Every absolute form of one path-like piece. */
function absolutes(scan: Scan, piece: string): string[] {
  const { home, cwd } = scan.env;
  if (piece.startsWith('~+') || piece.startsWith('~-')) {
    // `~+` is $PWD; `~-` is $OLDPWD, unknown here, so the cwd stands in.
    if (piece.length === 2 || piece[2] === '/') return [normalizePath(cwd + piece.slice(2), { home })];
  }
  if (piece.startsWith('~')) return [normalizePath(piece, { home })];
  if (piece.startsWith('/')) return [normal(piece, home, '/')];
  if (scan.bases.length === 1) return [normal(piece, home, cwd)];
  return scan.bases.map((base) => normal(piece, home, base));
}

/** `//`, `/./`, `/../`, or a trailing `/`, `/.` or `/..`: what collapse would change. */
const NOT_COLLAPSED = /\/(?:\.\.?)?(?:\/|$)/;

/**
 * normalizePath, skipping its split and join when joining already gives the normal form —
 * the common case, and most of the floor's cost on an ordinary command. `base` is normalised.
 */
function normal(piece: string, home: string, base: string): string {
  const joined = piece.startsWith('/') ? piece : base === '/' ? `/${piece}` : `${base}/${piece}`;
  return NOT_COLLAPSED.test(joined) ? normalizePath(piece, { home, cwd: base }) : joined;
}

/** Runs the command signatures over every command, collecting code the parser did not see. */
function judgeCommands(scan: Scan, analysis: ShellAnalysis): { hit: FloorHit | undefined; hidden: HiddenCode } {
  const hidden: HiddenCode = { texts: [], code: [] };
  const opaque = analysis.opaque;
  if (opaque.includes('unparseable') || (analysis.commands.length === 0 && opaque.includes('too_complex'))) hidden.texts.push(analysis.line);
  if (opaque.includes('control_flow')) hidden.texts.push(...hiddenWordLists(analysis.line));
  // The parser drops what follows a here-document's start on its line (`cat <<EOF > ~/.bashrc`,
  // `cat <<EOF | sh`), so those lines are read as raw text.
  if (opaque.includes('heredoc')) for (const text of analysis.line.split('\n')) if (text.includes('<<')) hidden.texts.push(text);
  const resolve = (text: string): readonly string[] => absolutes(scan, text);
  let hit: FloorHit | undefined;
  for (const { command, argv, program } of scan.commands) {
    hit ??= checkRecursiveDelete(scan.ctx, command, program, argv, scan.env, resolve) ?? checkFedCode(command, program, argv, hidden, analysis.line);
    // A subshell or group the parser kept as one word (`time (curl x | bash)`) is unread code.
    for (const word of argv) if (!word.static && (word.raw.startsWith('(') || word.raw.startsWith('{'))) hidden.texts.push(word.text);
  }
  return { hit, hidden };
}

/** One path the floor checks, and where in the line it came from. */
interface Candidate {
  readonly path: string;
  readonly reading: WordReading;
  readonly redirect: boolean;
  readonly source: Source;
}

/** Where a candidate came from; made into words only when the floor denies. */
interface Source {
  readonly kind: 'argument' | 'redirect' | 'assignment' | 'hidden' | 'code';
  readonly text: string;
  readonly program?: string;
}

function describe(source: Source): string {
  const text = JSON.stringify(source.text);
  switch (source.kind) {
    case 'argument':
      return `argument ${text} of ${source.program ?? 'the command'}`;
    case 'redirect':
      return `redirect target ${text}`;
    case 'assignment':
      return `assignment ${text}`;
    case 'hidden':
      return `${text} in text the parser could not see into`;
    case 'code':
      return `string ${text} in inline code`;
  }
}

const STOP: unique symbol = Symbol('stop');
type Visit = FloorHit | typeof STOP | undefined;

const DESCRIPTOR = /^(?:\d+-?|-)$/;
const TOKEN_SEPARATORS = /[\s;&|<>()`'"]+/;
const STRING_LITERAL = /'([^'\n]{1,1024})'|"([^"\n]{1,1024})"/g;

/** Calls `visit` with every candidate path of the line until it returns a hit or STOP. */
function visitPaths(scan: Scan, hidden: HiddenCode, visit: (candidate: Candidate) => Visit): Visit {
  // A wrapper and the command it wraps share word objects (`sudo echo .env`): a word is a path
  // if any command that holds it may open it.
  const words = new Map<ShellWord, string | undefined>();
  const redirects = new Set<ShellRedirect>();
  const assignments: string[] = [];
  for (const prepared of scan.commands) {
    collectWords(prepared, words);
    for (const redirect of prepared.command.redirects) redirects.add(redirect);
    assignments.push(...prepared.command.assignments);
  }
  for (const [word, program] of words) {
    if (program === undefined) continue;
    const hit = visitReadings(scan, readWord(word, scan.env), false, { kind: 'argument', text: word.raw, program }, visit, literalTilde(word));
    if (hit !== undefined) return hit;
  }
  for (const redirect of redirects) {
    const target = redirect.target;
    if (target === undefined || redirect.kind === 'heredoc' || redirect.kind === 'herestring') continue;
    // The parser calls `>& file` a dup; only a descriptor number is one.
    if (redirect.kind === 'dup' && target.static && DESCRIPTOR.test(target.text)) continue;
    const hit = visitReadings(scan, readWord(target, scan.env), true, { kind: 'redirect', text: target.raw }, visit, literalTilde(target));
    if (hit !== undefined) return hit;
  }
  for (const assignment of assignments) {
    const value = assignment.slice(assignment.indexOf('=') + 1).replace(/["']/g, '');
    const hit = visitReadings(scan, readText(value, scan.env), false, { kind: 'assignment', text: assignment }, visit);
    if (hit !== undefined) return hit;
  }
  for (const text of hidden.texts) {
    for (const token of text.split(TOKEN_SEPARATORS)) {
      if (token === '') continue;
      const hit = visitReadings(scan, readText(token.replace(/\\/g, ''), scan.env), false, { kind: 'hidden', text: token }, visit);
      if (hit !== undefined) return hit;
    }
  }
  for (const code of hidden.code) {
    for (const m of code.matchAll(STRING_LITERAL)) {
      const literal = m[1] ?? m[2] ?? '';
      const hit = visitReadings(scan, readText(literal, scan.env), false, { kind: 'code', text: literal }, visit);
      if (hit !== undefined) return hit;
    }
  }
  return undefined;
}

/** Records which words of a command may be paths, under the name of the program. */
function collectWords({ argv, program }: Prepared, words: Map<ShellWord, string | undefined>): void {
  const first = argv[0];
  if (first === undefined) return;
  const text = textIndexes(program, argv);
  const name = first.raw;
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i] as ShellWord;
    // A bare program name is looked up on PATH, not opened; `./x`, `/etc/x` and `~/x` are paths.
    if (i === 0 && !word.text.includes('/')) continue;
    const isPath = !text.has(i);
    // The innermost command that holds the word names it best (`cat`, not `sudo`).
    if (isPath) words.set(word, name);
    else if (!words.has(word)) words.set(word, undefined);
  }
}

/** `'~'/x` is a directory named `~` in the cwd: the gate should follow that too. */
function literalTilde(word: ShellWord): string | undefined {
  return word.static && !word.tilde && word.text.startsWith('~') ? `./${word.text}` : undefined;
}

function visitReadings(scan: Scan, readings: readonly WordReading[], redirect: boolean, source: Source, visit: (candidate: Candidate) => Visit, extra?: string): Visit {
  for (const reading of readings) {
    const pieces = reading.text === '' ? [] : piecesOf(reading.text);
    if (extra !== undefined) pieces.push(extra);
    for (const piece of pieces) {
      if (piece === '') continue;
      for (const path of absolutes(scan, piece)) {
        const hit = visit({ path, reading, redirect, source });
        if (hit !== undefined) return hit;
      }
    }
  }
  return undefined;
}

function checkCandidate(scan: Scan, candidate: Candidate): PathFinding | undefined {
  const { path, reading } = candidate;
  const dotOk = scan.dotOk || reading.dotOk;
  if (reading.namesOnly) return checkNames(path, dotOk);
  if (reading.glob && hasGlobChars(path)) return checkLiteralPath(scan.ctx, path) ?? checkGlobPath(scan.ctx, path, dotOk);
  return checkLiteralPath(scan.ctx, path);
}

/** For a word with unknown parts standing in as `*`: could a segment be a protected name? */
function checkNames(path: string, dotOk: boolean): PathFinding | undefined {
  for (const segment of segmentsOf(path.toLowerCase())) {
    if (!hasGlobChars(segment)) {
      const found = protectedName(segment);
      if (found !== undefined) return { entry: found.kind === 'dir' ? 'protected_dir' : 'protected_file', what: `inside the protected ${found.kind === 'dir' ? 'directory' : 'file'} ${JSON.stringify(segment)} (${found.why})` };
      continue;
    }
    const found = protectedNameForGlob(segment, dotOk);
    if (found !== undefined) {
      return { entry: found.kind === 'dir' ? 'protected_dir' : 'protected_file', what: `a word whose computed part could make it the protected ${found.kind === 'dir' ? 'directory' : 'file'} ${JSON.stringify(found.name)} (${found.why})` };
    }
  }
  return undefined;
}
