/**
 * The floor: the hard-coded deny list that no mode, rule, flag or setting lifts (DESIGN.md
 * §4.4). Pure — no file system, no environment: everything it knows comes in a FloorContext,
 * and the gate resolves symlinks and calls floorCheckPath again on what they point to.
 */
import type { FloorContext, FloorHit, ShellAnalysis, ShellRedirect, ShellWord, SimpleCommand } from '../src/shared/types.js';
import { hiddenWordLists, textIndexes } from './arguments.js';
import { hasGlobChars } from './glob.js';
import { absolutePath, hasDotDot, normalizePath, segmentsOf } from './paths.js';
import { programOf, type Program } from './programs.js';
import { checkGlobPath, checkLiteralPath, protectedName, protectedNameForGlob, type PathFinding } from './protected.js';
import { FLOOR_SUFFIX, checkDeletedPath, checkFedCode, checkForkBomb, checkRawSignatures, checkRecursiveDelete, deletedOperands, deletionGlobDirectory, effectiveArgv, replaceStrings, type FedContext, type HiddenCode } from './signatures.js';
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
  if (scan.truncated) {
    return { entry: 'unchecked_line', reason: `the line's commands hold more than ${MAX_ARGV_WORDS} words in all (wrappers nested deep), more than the floor checks; it is denied whole${FLOOR_SUFFIX}` };
  }
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
    // An un-collapsed form is for the gate to resolve; its text is the collapsed form's.
    if (candidate.unresolved) return undefined;
    const found = checkCandidate(scan, candidate);
    if (found === undefined) return undefined;
    const entry = found.entry === 'block_device' ? (candidate.redirect ? 'block_device_redirect' : 'block_device_argument') : 'protected_argument';
    const read = candidate.reading.braceGlob === true ? ' (a brace expansion too large for the floor to expand, read as a glob that matches at least its words)' : '';
    return { entry, reason: `${describe(candidate.source)} names ${quoted(candidate.path)}${read}, which is ${found.what}${FLOOR_SUFFIX}` };
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
 * and check again with floorCheckPath. A path written with `..` is also given absolute but
 * un-collapsed (`/tmp/ssl/../shadow`): the kernel applies `..` after following a symlink, so
 * only the resolver can say where it leads. At most MAX_CANDIDATES, in order of appearance.
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

/** A recursive delete's operand, absolute, for the gate to resolve and check with floorCheckDeletedPath. */
export interface DeletionTarget {
  readonly path: string;
  /**
   * rm and find follow a symlink that is the operand's last component only when it is written
   * with a trailing `/` (`rm -rf link/` empties what `link` points to; `rm -rf link` removes the
   * link). When false, resolve the parent directory and append the last component as it is.
   */
  readonly followLast: boolean;
}

/**
 * The operands of the line's recursive deletes (`rm -r`, `find -delete`), absolute — collapsed,
 * and un-collapsed when written with `..` — for the gate to follow symlinks in and check with
 * floorCheckDeletedPath: the floor's own check of `rm -rf` reads only their text. A glob gives
 * the directory it expands in. At most MAX_CANDIDATES.
 */
export function recursiveDeleteTargets(ctx: FloorContext, analysis: ShellAnalysis): DeletionTarget[] {
  const scan = createScan(ctx, analysis);
  const out = new Map<string, DeletionTarget>();
  const add = (path: string, followLast: boolean): void => {
    const key = `${followLast ? '1' : '0'}${path}`;
    if (out.size < MAX_CANDIDATES && !out.has(key)) out.set(key, { path, followLast });
  };
  for (const { argv, program } of scan.commands) {
    for (const operand of deletedOperands(program, argv) ?? []) {
      for (const reading of readWord(operand, scan.env)) {
        if (reading.namesOnly || reading.text === '') continue;
        const followLast = TRAILING_SLASH.test(reading.text);
        const paths = [...absolutes(scan, reading.text), ...unresolvedAbsolutes(scan, reading.text)];
        for (const path of paths) {
          const dir = reading.glob ? deletionGlobDirectory(path) : undefined;
          if (dir !== undefined) add(dir, true);
          else add(path, followLast);
        }
      }
      if (out.size >= MAX_CANDIDATES) return [...out.values()];
    }
  }
  return [...out.values()];
}

/** Written with a trailing `/` or `/.`: a final symlink is followed. */
const TRAILING_SLASH = /\/\.?$/;

/** Checks where a recursive delete's operand leads once the gate has followed its symlinks (see recursiveDeleteTargets). */
export function floorCheckDeletedPath(ctx: FloorContext, resolvedPath: string): FloorHit | undefined {
  return checkDeletedPath(ctx, normalizePath(resolvedPath, { home: ctx.home, cwd: ctx.cwd }));
}

/** How many candidate paths commandPathCandidates returns at most; a caller that gets this many knows it may have been cut. */
export const MAX_CANDIDATES = 256;
/** Past this many candidate checks the line is denied: a line must not hide a path behind volume. */
const MAX_CHECKED_PATHS = 10_000;
/**
 * Past this many argv words across all commands the line is denied whole. Nested wrappers share
 * their words (`sudo sudo … ls` reports each level with the rest of the line), so a line's
 * commands can hold far more words than the line has; this keeps every check linear.
 */
const MAX_ARGV_WORDS = 200_000;
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
  /** `cd` targets written with `..`, absolute but un-collapsed (`cd -P` follows symlinks first). */
  readonly rawBases: readonly string[];
  /** The line turns bash's dotglob on (or zsh's globdots): `*` matches dotfiles. */
  readonly dotOk: boolean;
  /** Commands were left out: they held more than MAX_ARGV_WORDS words in all. */
  readonly truncated: boolean;
}

function createScan(ctx: FloorContext, analysis: ShellAnalysis): Scan {
  const cwd = ctx.cwd ?? ctx.home;
  const env: WordEnv = { home: ctx.home, cwd, cmdopHome: ctx.cmdopHome };
  const bases = [cwd];
  const rawBases: string[] = [];
  const commands: Prepared[] = [];
  let words = 0;
  let truncated = false;
  for (const command of analysis.commands) {
    words += command.argv.length;
    if (words > MAX_ARGV_WORDS) {
      truncated = true;
      break;
    }
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
      if (!hasDotDot(text)) continue;
      const raw = absolutePath(text, { home: ctx.home, cwd });
      if (!rawBases.includes(raw) && rawBases.length < MAX_EXTRA_BASES) rawBases.push(raw);
    }
  }
  return { ctx, commands, env, bases, rawBases, dotOk: DOTGLOB.test(analysis.line), truncated };
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

/**
 * The absolute but un-collapsed forms of a piece, where they differ from its collapsed ones:
 * a piece written with `..`, or a relative piece taken against a `cd` target written with `..`.
 */
function unresolvedAbsolutes(scan: Scan, piece: string): string[] {
  const { home, cwd } = scan.env;
  const out: string[] = [];
  const relative = !piece.startsWith('/') && !piece.startsWith('~');
  if (hasDotDot(piece)) {
    if ((piece.startsWith('~+') || piece.startsWith('~-')) && (piece.length === 2 || piece[2] === '/')) out.push(absolutePath(cwd + piece.slice(2), { home }));
    else if (!relative) out.push(absolutePath(piece, { home }));
    else for (const base of scan.bases) out.push(absolutePath(piece, { home, cwd: base }));
  }
  if (relative) for (const base of scan.rawBases) out.push(absolutePath(piece, { home, cwd: base }));
  return out;
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
  const fed: FedContext = { placeholders: replaceStrings(scan.commands.map((c) => c.argv)) };
  let hit: FloorHit | undefined;
  for (const { command, argv, program } of scan.commands) {
    hit ??= checkRecursiveDelete(scan.ctx, command, program, argv, scan.env, resolve) ?? checkFedCode(command, program, argv, hidden, analysis.line, fed);
    // A subshell or group the parser kept as one word (`time (curl x | bash)`) is unread code.
    for (const word of argv) if (!word.static && (word.raw.startsWith('(') || word.raw.startsWith('{'))) hidden.texts.push(word.text);
  }
  return { hit, hidden };
}

/** One path the floor checks, and where in the line it came from. */
interface Candidate {
  readonly path: string;
  /** An absolute but un-collapsed form, for the gate to resolve only (its text was checked collapsed). */
  readonly unresolved?: boolean;
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

/** Longest text quoted whole in a reason; longer text is cut. */
const QUOTED_MAX = 160;

function quoted(text: string): string {
  return JSON.stringify(text.length > QUOTED_MAX ? `${text.slice(0, QUOTED_MAX)}…` : text);
}

function describe(source: Source): string {
  const text = quoted(source.text);
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
  // Raw text repeats itself (`"$a""$a"…`); the same token gives the same candidates.
  const seen = new Set<string>();
  for (const text of hidden.texts) {
    for (const token of text.split(TOKEN_SEPARATORS)) {
      if (token === '' || seen.has(token)) continue;
      seen.add(token);
      const hit = visitReadings(scan, readText(token.replace(/\\/g, ''), scan.env), false, { kind: 'hidden', text: token }, visit);
      if (hit !== undefined) return hit;
    }
  }
  for (const code of hidden.code) {
    for (const m of code.matchAll(STRING_LITERAL)) {
      const literal = m[1] ?? m[2] ?? '';
      if (seen.has(`\u0000${literal}`)) continue;
      seen.add(`\u0000${literal}`);
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
      const collapsed = absolutes(scan, piece);
      for (const path of collapsed) {
        const hit = visit({ path, reading, redirect, source });
        if (hit !== undefined) return hit;
      }
      if (reading.namesOnly || (!piece.includes('..') && scan.rawBases.length === 0)) continue;
      for (const path of unresolvedAbsolutes(scan, piece)) {
        if (collapsed.includes(path)) continue;
        const hit = visit({ path, reading, redirect, source, unresolved: true });
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
