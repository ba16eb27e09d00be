/**
 * The permission gate: floor, then deny rules anywhere, then session before global rules
 * (ask over allow within a scope), then the mode default (DESIGN.md §4.1). Pure: the file
 * system is reached only through the PathResolver it is handed.
 */
import { commandPathCandidates, floorCheckCommand, floorCheckPath, MAX_CANDIDATES } from '../../floor/index.js';
import { expandBraces } from '../../floor/glob.js';
import { absolutePath, normalizePath } from '../../floor/paths.js';
import { CmdopError } from '../errors.js';
import type { FloorContext, FloorHit, ShellAnalysis, SimpleCommand } from '../shared/types.js';
import type { Policy } from './policy.js';
import type { CompiledRule, RuleBucket } from './rule-index.js';
import { createShellParser, programBase, type ShellParser } from './shell-parser.js';
import { TOOLS, type Decision, type GateDecision, type GateRequest, type Mode, type RuleScope, type ToolClass } from './types.js';

/** What resolving a path against the real file system gave. */
export type PathResolution = { readonly kind: 'resolved'; readonly path: string } | { readonly kind: 'error'; readonly reason: string };

/**
 * Follows symlinks to what would actually be opened. A path that does not exist yet resolves
 * through its deepest existing ancestor (and through a dangling link to where it points).
 */
export interface PathResolver {
  resolve(absolutePath: string): PathResolution;
  /** The same for many paths at once, sharing the work for paths in one directory. */
  resolveAll(absolutePaths: readonly string[]): PathResolution[];
}

export interface GateOptions {
  /** The receiving user's home directory, absolute. */
  readonly home: string;
  /** The daemon's own CMDOP_HOME, absolute; the floor protects it. */
  readonly cmdopHome: string;
  readonly resolver: PathResolver;
}

export interface Gate {
  /** Decides one request. Throws CmdopError('invalid_input') for a malformed request. */
  evaluate(request: GateRequest, policy: Policy): GateDecision;
  /** The parsed form of a command line, as the gate sees it. */
  parseCommand(line: string): ShellAnalysis;
}

const MODE_TABLE: Readonly<Record<Mode, Readonly<Record<ToolClass, Decision>>>> = {
  default: { read: 'allow', dangerous: 'ask' },
  strict: { read: 'ask', dangerous: 'deny' },
  bypass: { read: 'allow', dangerous: 'allow' },
};

const MAX_TARGET_LENGTH = 256 * 1024;

/** Resolution errors that mean a path exists but cannot be followed, as opposed to text that is no path. */
const UNFOLLOWABLE = /^(ELOOP|EACCES|EPERM)\b/;

/** A part of a target that rules are matched against: one simple command, or one path form. */
interface Part {
  readonly text: string;
  /** Index keys for command rules: the program as written. */
  readonly programs: readonly string[];
  /**
   * Other spellings deny rules also see: the program path reduced to its base name
   * (`/usr/bin/rm` is `rm`), and each brace expansion of the program (`/bin/{rm,ls}`).
   */
  readonly denyForms: readonly { readonly text: string; readonly program: string }[];
  /** Only top-level parts can be allowed; nested ones are checked for deny and ask. */
  readonly allowable: boolean;
}

/** Loads the shell grammar and returns a gate for one host. */
export async function createGate(options: GateOptions): Promise<Gate> {
  const parser = await createShellParser();
  return createGateWithParser(options, parser);
}

/** A gate over an already-loaded parser (several gates may share one). */
export function createGateWithParser(options: GateOptions, parser: ShellParser): Gate {
  const home = normalizePath(options.home, { home: '/' });
  const cmdopHome = normalizePath(options.cmdopHome, { home });
  const resolver = options.resolver;

  function floorContext(request: GateRequest): FloorContext {
    const cwd = request.cwd === undefined ? home : normalizePath(request.cwd, { home });
    return { home, cmdopHome, cwd };
  }

  /**
   * Decides, and never lets an unexpected error through as anything but a denial: a bug or a
   * hostile input that breaks the parser must not become an allow, nor crash the caller.
   */
  function evaluate(request: GateRequest, policy: Policy): GateDecision {
    checkRequest(request);
    try {
      return decide(request, policy);
    } catch (error) {
      if (error instanceof CmdopError && error.code === 'invalid_input') throw error;
      const why = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      return floorDecision({ entry: 'internal_error', reason: `the gate could not decide (${why.slice(0, 200)}); denied` });
    }
  }

  function decide(request: GateRequest, policy: Policy): GateDecision {
    if (policy.home !== home) {
      throw new CmdopError('internal', `the policy was compiled for home ${policy.home}, but this gate decides for ${home}`);
    }
    const spec = TOOLS[request.tool];
    switch (spec.target) {
      case 'command':
        return decideCommand(request, policy);
      case 'path':
        return decidePath(request, policy);
      case 'hostname':
        return decideParts(request, policy, [hostPart(request.target)], true);
    }
  }

  function decideCommand(request: GateRequest, policy: Policy): GateDecision {
    const analysis = parser.parse(request.target);
    const ctx = floorContext(request);
    const hit = floorCheckCommand(ctx, analysis) ?? resolvedArgumentHit(ctx, analysis);
    if (hit !== undefined) return floorDecision(hit);
    if (!policy.enabled) return disabledDecision();
    const parts = analysis.commands.map(commandPart);
    const lineDeny = findLiteral(policy, 'deny', request, request.target);
    if (lineDeny !== undefined) return ruleDecision(lineDeny, request.target);
    // Commands a wrapper runs (`sudo X`, `timeout 5 X`) are nested but visible: they add no
    // opaque reason, and deny rules see them. Anything hidden makes the line opaque.
    const transparent = analysis.opaque.length === 0;
    const why = transparent ? undefined : opaqueExplanation(analysis);
    return decideParts(request, policy, parts, transparent, why);
  }

  /**
   * Command arguments that are symlinks into protected places. A path that cannot be followed
   * (a loop, no permission) is denied, as for path targets; an argument too long to be a
   * file name is text, not a path. A line with more paths than are followed is denied whole.
   */
  function resolvedArgumentHit(ctx: FloorContext, analysis: ShellAnalysis): FloorHit | undefined {
    const candidates = commandPathCandidates(ctx, analysis);
    if (candidates.length >= MAX_CANDIDATES) {
      return { entry: 'too_many_paths', reason: `the line names ${MAX_CANDIDATES} or more paths, more than the gate follows through symlinks; split it into smaller commands` };
    }
    const resolutions = resolver.resolveAll(candidates);
    for (const [index, candidate] of candidates.entries()) {
      const resolution = resolutions[index] ?? { kind: 'error', reason: 'EINVAL: not resolved' };
      if (resolution.kind === 'error') {
        if (!UNFOLLOWABLE.test(resolution.reason)) continue;
        return { entry: 'unresolvable_path', reason: `"${candidate}" could not be resolved (${resolution.reason}); a path the gate cannot follow is denied` };
      }
      if (resolution.path === candidate) continue;
      const hit = floorCheckPath(ctx, resolution.path);
      if (hit !== undefined) {
        return { entry: hit.entry, reason: `"${candidate}" resolves to "${resolution.path}": ${hit.reason}` };
      }
    }
    return undefined;
  }

  function decidePath(request: GateRequest, policy: Policy): GateDecision {
    const ctx = floorContext(request);
    const written = normalizePath(request.target, { home, cwd: ctx.cwd });
    const writtenHit = floorCheckPath(ctx, written);
    if (writtenHit !== undefined) return floorDecision(writtenHit);
    // The file system resolves the path as written, `..` after a symlink included (the kernel
    // reads `link/../x` through the link); only the written form is collapsed as text.
    const resolution = resolver.resolve(absolutePath(request.target, { home, cwd: ctx.cwd }));
    if (resolution.kind === 'error') {
      return floorDecision({ entry: 'unresolvable_path', reason: `"${written}" could not be resolved (${resolution.reason}); a path the gate cannot follow is denied` });
    }
    const resolved = resolution.path;
    if (resolved !== written) {
      const resolvedHit = floorCheckPath(ctx, resolved);
      if (resolvedHit !== undefined) return floorDecision({ entry: resolvedHit.entry, reason: `"${written}" resolves to "${resolved}": ${resolvedHit.reason}` });
    }
    if (!policy.enabled) return disabledDecision();
    const forms = resolved === written ? [written] : [written, resolved];
    return decideParts(request, policy, forms.map(pathPart), true);
  }

  return { evaluate, parseCommand: (line) => parser.parse(line) };
}

function checkRequest(request: GateRequest): void {
  const spec = TOOLS[request.tool];
  if ((spec as typeof spec | undefined) === undefined) {
    throw new CmdopError('invalid_input', `unknown tool "${request.tool}"`, { hint: `Known tools: ${Object.keys(TOOLS).join(', ')}.` });
  }
  if (request.operation !== undefined && !spec.operations.includes(request.operation)) {
    const known = spec.operations.length === 0 ? `${request.tool} takes no operation` : `operations of ${request.tool}: ${spec.operations.join(', ')}`;
    throw new CmdopError('invalid_input', `unknown operation "${request.operation}" for ${request.tool}`, { hint: `${known}.` });
  }
  if (request.target.length === 0) throw new CmdopError('invalid_input', `the ${spec.target} to check is empty`, { hint: 'Give the command line, path or host name the call would use.' });
  if (request.target.length > MAX_TARGET_LENGTH) throw new CmdopError('invalid_input', `the ${spec.target} is longer than ${MAX_TARGET_LENGTH} characters`);
  if (spec.target !== 'command' && request.target.includes('\0')) throw new CmdopError('invalid_input', `the ${spec.target} contains a NUL character`);
}

function commandText(command: SimpleCommand): string {
  return command.argv.map((w) => (w.static ? w.text : w.raw)).join(' ');
}

function commandPart(command: SimpleCommand): Part {
  const text = commandText(command);
  const program = command.argv[0];
  const written = program === undefined ? '' : program.static ? program.text : program.raw;
  const rest = command.argv.slice(1).map((w) => (w.static ? w.text : w.raw));
  const spellings = program?.brace === true ? (expandBraces(program.text) ?? []) : [written];
  const denyForms: { text: string; program: string }[] = [];
  for (const spelling of spellings) {
    for (const name of program?.static === true ? new Set([spelling, programBase(spelling)]) : []) {
      if (name.length > 0 && name !== written) denyForms.push({ text: [name, ...rest].join(' '), program: name });
    }
  }
  return { text, programs: [written], denyForms, allowable: command.position === 'top' && command.opaque.length === 0 };
}

function pathPart(path: string): Part {
  return { text: path, programs: [], denyForms: [], allowable: true };
}

function hostPart(host: string): Part {
  return { text: host.toLowerCase(), programs: [], denyForms: [], allowable: true };
}

function findLiteral(policy: Policy, effect: 'deny', request: GateRequest, line: string): CompiledRule | undefined {
  return policy.session[request.tool][effect].findLiteral(line, request.operation) ?? policy.global[request.tool][effect].findLiteral(line, request.operation);
}

function findIn(bucket: RuleBucket, part: Part, operation: string | undefined): CompiledRule | undefined {
  return bucket.find(part.text, operation, part.programs);
}

function findDeny(bucket: RuleBucket, part: Part, operation: string | undefined): CompiledRule | undefined {
  const found = findIn(bucket, part, operation);
  if (found !== undefined) return found;
  for (const form of part.denyForms) {
    const rule = bucket.find(form.text, operation, [form.program]);
    if (rule !== undefined) return rule;
  }
  return undefined;
}

/**
 * Rules over the parts of one target, in the documented order:
 * deny anywhere; then per part, session before global with ask over allow; a line is
 * allowed only when it is transparent and every part is allowed; else the whole target's
 * exact rules; else the mode default.
 */
function decideParts(request: GateRequest, policy: Policy, parts: readonly Part[], transparent: boolean, why?: string): GateDecision {
  const op = request.operation;
  const tool = request.tool;
  if (!policy.enabled) return disabledDecision();
  for (const scope of [policy.session, policy.global]) {
    for (const part of parts) {
      const rule = findDeny(scope[tool].deny, part, op);
      if (rule !== undefined) return ruleDecision(rule, part.text);
    }
  }
  const sessionAsk = policy.session[tool].ask.findLiteral(request.target, op);
  if (sessionAsk !== undefined) return ruleDecision(sessionAsk, request.target);
  const sessionLiteral = policy.session[tool].allow.findLiteral(request.target, op);
  if (sessionLiteral !== undefined) return ruleDecision(sessionLiteral, request.target);

  const allowedBy: CompiledRule[] = [];
  let everyPartAllowed = transparent;
  for (const part of parts) {
    const verdict = partVerdict(policy, tool, part, op);
    if (verdict?.effect === 'ask') return ruleDecision(verdict, part.text);
    if (verdict?.effect === 'allow' && part.allowable) allowedBy.push(verdict);
    else if (part.allowable) everyPartAllowed = false;
  }
  if (everyPartAllowed && allowedBy.length > 0) return allowDecision(allowedBy, parts);

  const globalAsk = policy.global[tool].ask.findLiteral(request.target, op);
  if (globalAsk !== undefined) return ruleDecision(globalAsk, request.target);
  const globalLiteral = policy.global[tool].allow.findLiteral(request.target, op);
  if (globalLiteral !== undefined) return ruleDecision(globalLiteral, request.target);
  return modeDecision(policy.mode, TOOLS[tool].class, why);
}

function partVerdict(policy: Policy, tool: GateRequest['tool'], part: Part, op: string | undefined): CompiledRule | undefined {
  for (const scope of [policy.session, policy.global]) {
    const ask = findIn(scope[tool].ask, part, op);
    if (ask !== undefined) return ask;
    const allow = findIn(scope[tool].allow, part, op);
    if (allow !== undefined) return allow;
  }
  return undefined;
}

const EFFECT_VERB: Readonly<Record<CompiledRule['effect'], string>> = { allow: 'allowed', deny: 'denied', ask: 'needs the operator: asked' };

function ruleDecision(rule: CompiledRule, matched: string): GateDecision {
  const note = rule.note === undefined ? '' : ` (${rule.note})`;
  return decisionOf(rule.effect, rule, `${EFFECT_VERB[rule.effect]} by ${rule.scope} rule "${rule.text}"${note}, which matches "${clip(matched)}"`);
}

function allowDecision(rules: readonly CompiledRule[], parts: readonly Part[]): GateDecision {
  const first = rules[0] as CompiledRule;
  if (rules.length === 1) return ruleDecision(first, (parts[0] as Part).text);
  const names = [...new Set(rules.map((r) => `"${r.text}"`))].join(', ');
  return decisionOf('allow', first, `allowed: each of the ${rules.length} parts matches an allow rule (${names})`);
}

function decisionOf(decision: Decision, rule: CompiledRule, reason: string): GateDecision {
  return Object.freeze({ decision, source: 'rule', rule: rule.text, rule_id: rule.id, scope: rule.scope satisfies RuleScope, reason });
}

function floorDecision(hit: FloorHit): GateDecision {
  return Object.freeze({ decision: 'deny', source: 'floor', reason: `floor: ${hit.reason}` });
}

function disabledDecision(): GateDecision {
  return Object.freeze({ decision: 'allow', source: 'mode', reason: 'the permission gate is disabled (permissions.enabled: false); only the floor applies' });
}

function modeDecision(mode: Mode, toolClass: ToolClass, why: string | undefined): GateDecision {
  const decision = MODE_TABLE[mode][toolClass];
  const verb = decision === 'allow' ? 'allows' : decision === 'deny' ? 'denies' : 'asks for';
  const tail = why === undefined ? '' : `; ${why}`;
  return Object.freeze({ decision, source: 'mode', reason: `no rule allowed it; mode "${mode}" ${verb} ${toolClass} tools${tail}` });
}

const OPAQUE_TEXT: Readonly<Record<string, string>> = {
  substitution: 'a command or process substitution',
  expansion: 'a variable, parameter or arithmetic expansion',
  eval: 'eval',
  interpreter_code: 'code handed to an interpreter (bash -c, python -c, awk, find -exec, ...)',
  env_prefix: 'an environment-variable assignment',
  background: 'backgrounding (&)',
  subshell: 'a subshell or group',
  control_flow: 'control flow',
  function_definition: 'a function definition',
  heredoc: 'a here-document or here-string',
  ansi_c_quoting: "ANSI-C quoting ($'...')",
  dynamic_program: 'a program name that is computed, globbed or braced',
  line_continuation: 'a line continuation',
  control_character: 'a NUL or carriage-return character',
  unparseable: 'text bash cannot parse',
  redirect: 'a redirect to or from a file',
  too_complex: 'a construct too complex to inspect',
};

function opaqueExplanation(analysis: ShellAnalysis): string {
  const reasons = new Set(analysis.opaque);
  for (const command of analysis.commands) for (const reason of command.opaque) reasons.add(reason);
  const texts = [...reasons].map((r) => OPAQUE_TEXT[r] ?? r);
  if (texts.length === 0) return 'part of the line runs nested inside another command';
  return `the line contains ${texts.join(', ')}, which no wildcard rule can allow`;
}

function clip(text: string): string {
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}
