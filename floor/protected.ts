/**
 * What the floor protects, by name, by directory and by absolute prefix (DESIGN.md §4.4), and
 * the checks of one normalised path against them — literal or glob. Everything is compared
 * lower-cased: macOS and Windows file systems are case-insensitive by default, so `.ENV`,
 * `.Git` and `/ETC` name the protected thing there; matching case-insensitively on every host
 * errs toward denying and keeps one behaviour everywhere.
 */
import type { FloorContext } from '../src/shared/types.js';
import { compileGlob, globMatches, globMatchesSomeDigits, globMatchesSomePrefixed, globMatchesSomeSuffixed, hasGlobChars, literalEnds, type GlobSegment } from './glob.js';
import { collapse, isUnder, segmentsOf } from './paths.js';

/** Directories denied anywhere in a path, with why. Reading or writing inside them is denied. */
const PROTECTED_DIRS: ReadonlyMap<string, string> = new Map([
  // Repository internals: hooks and config run code on the next git command; history holds secrets.
  ['.git', 'git internals: hooks and config run code'],
  // SSH keys, authorized_keys (a write grants login), known_hosts and config.
  ['.ssh', 'SSH keys and login configuration'],
  // The daemon's default home: permissions, tokens, TLS keys, audit log.
  ['.cmdop', "cmdop's own state"],
  // GnuPG private keys and agent sockets.
  ['.gnupg', 'GnuPG private keys'],
  // AWS credentials and config (static keys, SSO caches).
  ['.aws', 'AWS credentials'],
]);

/** File names denied anywhere in a path, with why. */
const PROTECTED_FILES: ReadonlyMap<string, string> = new Map([
  ['.env', 'environment secrets'],
  // direnv runs it on `cd`, and it usually exports secrets.
  ['.envrc', 'environment secrets, run by direnv'],
  // core.pager, core.sshCommand, aliases and hooksPath run code; credential helpers hold tokens.
  ['.gitconfig', 'git configuration that runs code'],
  ['.git-credentials', 'git credentials'],
  // Shell startup files run on every login or new shell: a write is persistent code execution.
  ['.bashrc', 'shell startup file'],
  ['.bash_profile', 'shell startup file'],
  ['.bash_login', 'shell startup file'],
  ['.bash_logout', 'shell startup file'],
  ['.profile', 'shell startup file'],
  ['.zshrc', 'shell startup file'],
  ['.zprofile', 'shell startup file'],
  ['.zshenv', 'shell startup file'],
  ['.zlogin', 'shell startup file'],
  ['.zlogout', 'shell startup file'],
  ['.kshrc', 'shell startup file'],
  ['.cshrc', 'shell startup file'],
  ['.tcshrc', 'shell startup file'],
  ['.login', 'shell startup file'],
  // `--pre` in ripgrep's config runs a program on every file searched.
  ['.ripgreprc', 'ripgrep configuration that runs code'],
  // Agent tool configuration: which MCP servers start (code execution) and their tokens.
  ['.mcp.json', 'agent tool configuration'],
  ['.claude.json', 'agent tool configuration'],
  // Plain-text credentials for ftp/curl/git, npm/yarn tokens (npm's script-shell runs code),
  // PyPI upload tokens and PostgreSQL passwords.
  ['.netrc', 'network credentials'],
  ['.npmrc', 'npm tokens and configuration that runs code'],
  ['.pypirc', 'PyPI credentials'],
  ['.pgpass', 'PostgreSQL passwords'],
]);

/**
 * Name prefixes that make a file protected: dotenv variants (`.env.local`, `.env.production`,
 * `.env.example` too — an example file is where real values end up more often than not, and
 * the floor cannot read it to tell) and SSH private keys, including `_sk` hardware-key forms
 * and backups (`id_rsa.bak`); public halves (`.pub`) are not protected.
 */
const PROTECTED_PREFIXES_OF_NAMES: readonly { readonly prefix: string; readonly why: string }[] = [
  { prefix: '.env.', why: 'environment secrets' },
  { prefix: '.env-', why: 'environment secrets' },
  { prefix: '.env_', why: 'environment secrets' },
  { prefix: 'id_rsa', why: 'SSH private key' },
  { prefix: 'id_dsa', why: 'SSH private key' },
  { prefix: 'id_ecdsa', why: 'SSH private key' },
  { prefix: 'id_ed25519', why: 'SSH private key' },
];

/**
 * Extensions that make a file protected: private keys and key stores (`.pem` and `.key` are
 * where TLS private keys live; certificates that share `.pem` are collateral the floor accepts,
 * since it cannot read the file to tell) and `*.env` files (docker's `env_file`, `prod.env`).
 * The stem must look like a file name — no quotes, brackets or other code punctuation — so
 * that code such as `console.log(process.env)` is not taken for a file. Spaces are allowed:
 * `my key.pem` is a file name people use.
 */
const PROTECTED_SUFFIXES: readonly { readonly suffix: string; readonly why: string }[] = [
  { suffix: '.env', why: 'environment secrets' },
  { suffix: '.pem', why: 'private key or certificate' },
  { suffix: '.key', why: 'private key' },
  { suffix: '.p12', why: 'private key store' },
  { suffix: '.pfx', why: 'private key store' },
  { suffix: '.ppk', why: 'PuTTY private key' },
];

const FILE_STEM = /^[^()'"`;,{}<>|&$=:*?[\]\\\n]+$/;

/** Block devices and raw memory: reading one bypasses every file protection, writing destroys it. */
const BLOCK_DEVICE =
  /^\/dev\/(?:(?:s|h|v|xv)d[a-z]+\d*|nvme\d+(?:n\d+(?:p\d+)?)?|mmcblk\d+(?:p\d+|boot\d+|rpmb)?|r?disk\d+(?:s\d+)*|disk(?:\/.*)?|mapper(?:\/.*)?|dm-\d+|loop\d+|md\d+(?:p\d+)?|md(?:\/.*)?|nbd\d+(?:p\d+)?|zram\d+|sg\d+|sr\d+|mtd(?:block)?\d+|block(?:\/.*)?|root|mem|kmem|port)$|^\/proc\/kcore$/;

/**
 * A process's secrets under /proc, for `self`, `thread-self`, a pid and a pid's tasks:
 * `environ` (the environment it was started with: API keys and tokens, the daemon's too) and
 * `mem` (its memory); and `root` and `cwd`, which open its view of the file system — another
 * mount namespace (a container's) or the daemon's own directory — where no path of the floor
 * means what it says. `cmdline` is not listed: `ps` shows every command line anyway.
 */
const PROC_SECRET = /^\/proc\/(?:self|thread-self|\d+)(?:\/task\/\d+)?\/(?:(environ|mem)|(root|cwd)(?:\/.*)?)$/;

/** The findings for PROC_SECRET's two kinds. */
const PROC_FILE: PathFinding = { entry: 'protected_file', what: "a process's environment or memory under /proc (secrets it was started with)" };
const PROC_ROOT: PathFinding = { entry: 'protected_prefix', what: "a process's root or working directory under /proc (its own view of the file system, which the floor's paths do not describe)" };

/** What a protected path is, for a reason text. */
export type PathEntry = 'protected_file' | 'protected_dir' | 'protected_prefix' | 'block_device';

/** A floor match on one path: which entry, and a phrase naming the protected thing. */
export interface PathFinding {
  readonly entry: PathEntry;
  /** Completes "X is …" / "X could expand to …": `inside the protected directory ".ssh" (…)`. */
  readonly what: string;
}

interface Prefix {
  readonly path: string;
  readonly segments: readonly string[];
  readonly shown: string;
  readonly why: string;
}

/** Absolute prefixes for one context; rebuilt only when home or CMDOP_HOME changes. */
let memo: { home: string; cmdopHome: string; prefixes: readonly Prefix[] } | undefined;

/** The protected absolute prefixes for `ctx`, lower-cased. */
export function protectedPrefixes(ctx: FloorContext): readonly Prefix[] {
  if (memo?.home === ctx.home && memo.cmdopHome === ctx.cmdopHome) return memo.prefixes;
  const home = collapse(ctx.home);
  const entries: [string, string, string][] = [
    ['/etc', '/etc', 'system configuration'],
    ['/private/etc', '/private/etc', 'system configuration'],
    ['/System', '/System', 'the macOS system volume'],
    [`${home}/Library/Keychains`, '~/Library/Keychains', 'macOS keychains'],
    [`${home}/.config/cmdop`, '~/.config/cmdop', "cmdop's own configuration"],
    [ctx.cmdopHome, 'CMDOP_HOME', "the daemon's own home"],
  ];
  const prefixes = entries.map(([raw, shown, why]) => {
    const path = collapse(raw).toLowerCase();
    return { path, segments: segmentsOf(path), shown: shown === 'CMDOP_HOME' ? `CMDOP_HOME (${path})` : shown, why };
  });
  memo = { home: ctx.home, cmdopHome: ctx.cmdopHome, prefixes };
  return prefixes;
}

/** The protected thing a literal name is, if any (`name` lower-case). */
export function protectedName(name: string): { readonly kind: 'dir' | 'file'; readonly why: string } | undefined {
  // Every protected name has a dot or starts with `id_`: most segments leave here.
  if (!name.includes('.') && !name.startsWith('id_')) return undefined;
  const dir = PROTECTED_DIRS.get(name);
  if (dir !== undefined) return { kind: 'dir', why: dir };
  const file = PROTECTED_FILES.get(name);
  if (file !== undefined) return { kind: 'file', why: file };
  for (const { prefix, why } of PROTECTED_PREFIXES_OF_NAMES) {
    if (name.startsWith(prefix) && !(prefix.startsWith('id_') && name.endsWith('.pub'))) return { kind: 'file', why };
  }
  for (const { suffix, why } of PROTECTED_SUFFIXES) {
    if (name.length > suffix.length && name.endsWith(suffix) && FILE_STEM.test(name.slice(0, -suffix.length))) return { kind: 'file', why };
  }
  return undefined;
}

type GlobName = { readonly kind: 'dir' | 'file'; readonly name: string; readonly why: string } | undefined;

/** Answers for glob segments seen before; commands repeat the same few globs (`*.ts`). */
const globAnswers = new Map<string, GlobName>();
const MAX_GLOB_ANSWERS = 1024;

/** The protected name a glob segment could expand to, if any (`segment` lower-case). */
export function protectedNameForGlob(segment: string, dotOk: boolean): GlobName {
  const key = dotOk ? `1${segment}` : `0${segment}`;
  if (globAnswers.has(key)) return globAnswers.get(key);
  const answer = globName(segment, dotOk);
  if (globAnswers.size >= MAX_GLOB_ANSWERS) globAnswers.clear();
  globAnswers.set(key, answer);
  return answer;
}

function globName(segment: string, dotOk: boolean): GlobName {
  const tokens = compileGlob(segment);
  for (const [name, why] of PROTECTED_DIRS) if (globMatches(tokens, name, dotOk)) return { kind: 'dir', name, why };
  for (const [name, why] of PROTECTED_FILES) if (globMatches(tokens, name, dotOk)) return { kind: 'file', name, why };
  const { head, tail } = literalEnds(segment);
  for (const { prefix, why } of PROTECTED_PREFIXES_OF_NAMES) {
    // A glob names SSH keys only when it spells at least `id`: `*` alone is not a key name.
    if ((prefix.startsWith('.') || head.length >= 2) && globMatchesSomePrefixed(tokens, prefix, dotOk)) return { kind: 'file', name: `${prefix}*`, why };
  }
  // `*.pem` names keys; `*` and `*.*` name everything and are left to the gate's expansion.
  if (tail.length > 0) {
    for (const { suffix, why } of PROTECTED_SUFFIXES) if (globMatchesSomeSuffixed(tokens, suffix)) return { kind: 'file', name: `*${suffix}`, why };
  }
  return undefined;
}

/** True when `path` (lower-case, normalised) is a block device or raw memory. */
export function isBlockDevice(lowerPath: string): boolean {
  return lowerPath.startsWith('/dev/') || lowerPath === '/proc/kcore' ? BLOCK_DEVICE.test(lowerPath) : false;
}

const QUOTE = JSON.stringify;

/** Checks one literal absolute normalised path against every path entry of the floor. */
export function checkLiteralPath(ctx: FloorContext, path: string): PathFinding | undefined {
  const lower = path.toLowerCase();
  if (isBlockDevice(lower)) return { entry: 'block_device', what: 'a block device or raw memory, whose bytes bypass every file protection' };
  if (lower.startsWith('/proc/')) {
    const proc = PROC_SECRET.exec(lower);
    if (proc !== null) return proc[1] !== undefined ? PROC_FILE : PROC_ROOT;
  }
  for (const prefix of protectedPrefixes(ctx)) {
    // startsWith first: isUnder builds a string, and most paths share no prefix.
    if (lower.startsWith(prefix.path) && isUnder(lower, prefix.path)) {
      return { entry: 'protected_prefix', what: `${lower === prefix.path ? 'the' : 'under the'} protected prefix ${QUOTE(prefix.shown)} (${prefix.why})` };
    }
  }
  let start = 1;
  while (start <= lower.length) {
    let end = lower.indexOf('/', start);
    if (end === -1) end = lower.length;
    // Every protected name has a dot or starts with `id_`: most segments are never cut out.
    const dot = lower.indexOf('.', start);
    const candidate = end > start && ((dot !== -1 && dot < end) || lower.startsWith('id_', start));
    const found = candidate ? protectedName(lower.slice(start, end)) : undefined;
    if (found !== undefined) {
      const name = QUOTE(path.slice(start, end));
      const last = end === lower.length;
      if (found.kind === 'dir') return { entry: 'protected_dir', what: `${last ? 'the' : 'inside the'} protected directory ${name} (${found.why})` };
      return { entry: 'protected_file', what: `${last ? 'the' : 'inside the'} protected file ${name} (${found.why})` };
    }
    start = end + 1;
  }
  return undefined;
}

/**
 * Checks an absolute normalised path whose segments may hold glob characters: could its
 * expansion name a protected thing? Prefix entries are matched segment by segment.
 */
export function checkGlobPath(ctx: FloorContext, path: string, dotOk: boolean): PathFinding | undefined {
  const segments = segmentsOf(path.toLowerCase());
  const compiled = new Map<number, GlobSegment>();
  const tokensAt = (i: number, segment: string): GlobSegment => {
    let tokens = compiled.get(i);
    if (tokens === undefined) {
      tokens = compileGlob(segment);
      compiled.set(i, tokens);
    }
    return tokens;
  };
  const proc = procGlobFinding(segments, dotOk, tokensAt);
  if (proc !== undefined) return proc;
  for (const prefix of protectedPrefixes(ctx)) {
    if (globCouldBeUnder(segments, prefix.segments, dotOk, tokensAt)) {
      return { entry: 'protected_prefix', what: `under the protected prefix ${QUOTE(prefix.shown)} (${prefix.why})` };
    }
  }
  for (const segment of segments) {
    if (!hasGlobChars(segment)) {
      const found = protectedName(segment);
      if (found !== undefined) return nameFinding(found.kind, segment, found.why);
      continue;
    }
    const found = protectedNameForGlob(segment, dotOk);
    if (found !== undefined) return nameFinding(found.kind, found.name, found.why, true);
  }
  return undefined;
}

function nameFinding(kind: 'dir' | 'file', name: string, why: string, glob = false): PathFinding {
  const noun = kind === 'dir' ? 'directory' : 'file';
  return { entry: kind === 'dir' ? 'protected_dir' : 'protected_file', what: `${glob ? 'a glob that could expand to' : 'inside'} the protected ${noun} ${QUOTE(name)} (${why})` };
}

/** Could some expansion of the glob path lie at or under the prefix? `**` spans segments. */
function globCouldBeUnder(segments: readonly string[], prefix: readonly string[], dotOk: boolean, tokensAt: (i: number, s: string) => GlobSegment): boolean {
  if (segments.length === 0) return prefix.length === 0;
  for (let i = 0; i < prefix.length; i++) {
    const segment = segments[i];
    const want = prefix[i] as string;
    if (segment === undefined) return false;
    if (segment === '**') return prefix.slice(i).every((p) => dotOk || !p.startsWith('.'));
    if (segment === want) continue;
    if (!hasGlobChars(segment) || !globMatches(tokensAt(i, segment), want, dotOk)) return false;
  }
  return true;
}

/** One step of a /proc secret's path: fixed names, a pid (`self`, `thread-self`, digits), a task id, or anything below. */
type ProcStep = readonly string[] | 'pid' | 'tid' | 'rest';

/** The /proc secrets of PROC_SECRET as steps, for glob paths. */
const PROC_SHAPES: readonly { readonly steps: readonly ProcStep[]; readonly finding: PathFinding }[] = [
  { steps: [['proc'], 'pid', ['environ', 'mem']], finding: PROC_FILE },
  { steps: [['proc'], 'pid', ['task'], 'tid', ['environ', 'mem']], finding: PROC_FILE },
  { steps: [['proc'], 'pid', ['root', 'cwd'], 'rest'], finding: PROC_ROOT },
  { steps: [['proc'], 'pid', ['task'], 'tid', ['root', 'cwd'], 'rest'], finding: PROC_ROOT },
];

const PID_NAMES = ['self', 'thread-self'];
const DIGITS = /^\d+$/;

/** Could some expansion of the glob path be a /proc secret? `**` may stand for any run of segments. */
function procGlobFinding(segments: readonly string[], dotOk: boolean, tokensAt: (i: number, s: string) => GlobSegment): PathFinding | undefined {
  const first = segments[0];
  if (first === undefined || (first !== 'proc' && first !== '**' && !hasGlobChars(first))) return undefined;
  for (const shape of PROC_SHAPES) {
    if (shapeMatches(segments, shape.steps, dotOk, tokensAt)) return shape.finding;
  }
  return undefined;
}

function shapeMatches(segments: readonly string[], steps: readonly ProcStep[], dotOk: boolean, tokensAt: (i: number, s: string) => GlobSegment): boolean {
  for (let i = 0; i < steps.length; i++) {
    const step = steps[i] as ProcStep;
    if (step === 'rest') return true;
    const segment = segments[i];
    if (segment === undefined) return false;
    // Under globstar `**` spans any number of segments: what follows could be the rest.
    if (segment === '**') return true;
    if (!stepMatches(segment, i, step, dotOk, tokensAt)) return false;
  }
  return segments.length === steps.length;
}

function stepMatches(segment: string, i: number, step: Exclude<ProcStep, 'rest'>, dotOk: boolean, tokensAt: (i: number, s: string) => GlobSegment): boolean {
  const glob = hasGlobChars(segment);
  const names = step === 'pid' ? PID_NAMES : step === 'tid' ? [] : step;
  if (!glob) return names.includes(segment) || (typeof step === 'string' && DIGITS.test(segment));
  const tokens = tokensAt(i, segment);
  if (names.some((name) => globMatches(tokens, name, dotOk))) return true;
  return typeof step === 'string' && globMatchesSomeDigits(tokens);
}
