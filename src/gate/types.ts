/** The gate's vocabulary: tools, requests, rules and decisions (DESIGN.md §3–§4). */

export const TOOL_NAMES = [
  'execute_command',
  'read_file',
  'list_dir',
  'write_file',
  'connect',
  'ssh_session',
  'ask_agent',
] as const;

export type ToolName = (typeof TOOL_NAMES)[number];

/** What a tool's target is, and so how rules match it. */
export type TargetKind = 'command' | 'path' | 'hostname';

export type ToolClass = 'read' | 'dangerous';

export interface ToolSpec {
  readonly target: TargetKind;
  readonly class: ToolClass;
  /** Operations the tool accepts; empty when it has none. */
  readonly operations: readonly string[];
}

export const TOOLS: Readonly<Record<ToolName, ToolSpec>> = {
  execute_command: { target: 'command', class: 'dangerous', operations: [] },
  read_file: { target: 'path', class: 'read', operations: [] },
  list_dir: { target: 'path', class: 'read', operations: [] },
  write_file: { target: 'path', class: 'dangerous', operations: [] },
  connect: { target: 'hostname', class: 'dangerous', operations: ['exec', 'shell', 'copy'] },
  ssh_session: { target: 'hostname', class: 'dangerous', operations: ['open'] },
  ask_agent: { target: 'hostname', class: 'dangerous', operations: [] },
};

export function isToolName(value: string): value is ToolName {
  return Object.hasOwn(TOOLS, value);
}

export type Mode = 'default' | 'strict' | 'bypass';
export const MODES: readonly Mode[] = ['default', 'strict', 'bypass'];

export type RuleEffect = 'allow' | 'deny' | 'ask';
export const RULE_EFFECTS: readonly RuleEffect[] = ['allow', 'deny', 'ask'];

export type RuleScope = 'session' | 'global';

/** One incoming call, reduced to what the gate decides on. */
export interface GateRequest {
  readonly tool: ToolName;
  readonly operation?: string | undefined;
  /** The command line, path or host name rules match against. */
  readonly target: string;
  /** Working directory for relative paths in commands; defaults to the receiving user's home. */
  readonly cwd?: string | undefined;
}

export type Decision = 'allow' | 'deny' | 'ask';
export type DecisionSource = 'floor' | 'rule' | 'mode' | 'self' | 'local';

/** A decision is a value that explains itself (DESIGN.md §4.1). */
export interface GateDecision {
  readonly decision: Decision;
  readonly source: DecisionSource;
  /** The rule as written, when a rule decided. */
  readonly rule?: string;
  /** sha256 of the rule text, when a rule decided. */
  readonly rule_id?: string;
  /** Which rule set the deciding rule came from. */
  readonly scope?: RuleScope;
  readonly reason: string;
}
