/**
 * Types shared by the floor and the gate. The floor may import this file and nothing else
 * of src/ (DESIGN.md §2): it receives already-parsed commands and normalised paths.
 */

/** One word of a shell command after bash-style quote removal. */
export interface ShellWord {
  /** The word as written in the command line, quotes included. */
  readonly raw: string;
  /** The word after quote removal; meaningful only when `static` is true. */
  readonly text: string;
  /** False when the word's value depends on an expansion or substitution the gate cannot see. */
  readonly static: boolean;
  /** The word has an unquoted glob character (`*`, `?`, `[`) that bash would expand. */
  readonly glob: boolean;
  /** The word has an unquoted brace expansion (`{a,b}`, `{1..3}`). */
  readonly brace: boolean;
  /** The word starts with an unquoted `~` that bash would expand. */
  readonly tilde: boolean;
}

export type RedirectKind = 'file' | 'dup' | 'heredoc' | 'herestring';

export interface ShellRedirect {
  readonly kind: RedirectKind;
  /** The operator as written: `>`, `>>`, `<`, `&>`, `>|`, `<>`, `<<`, `<<<`, ... */
  readonly operator: string;
  /** The file descriptor written before the operator, if any. */
  readonly fd: number | undefined;
  /** The file named by a `file` redirect (or the fd word of a `dup`). */
  readonly target: ShellWord | undefined;
}

/** Why a part of a line is hidden from rules (DESIGN.md §4.3). */
export type OpaqueReason =
  | 'substitution'
  | 'expansion'
  | 'eval'
  | 'interpreter_code'
  | 'env_prefix'
  | 'background'
  | 'subshell'
  | 'control_flow'
  | 'function_definition'
  | 'heredoc'
  | 'ansi_c_quoting'
  | 'dynamic_program'
  | 'line_continuation'
  | 'control_character'
  | 'unparseable'
  | 'redirect'
  | 'too_complex';

/** One simple command: a program and its arguments, with what surrounds it. */
export interface SimpleCommand {
  /** argv[0] is the program as written. Never empty. */
  readonly argv: readonly ShellWord[];
  /** `NAME=value` words before the program. */
  readonly assignments: readonly string[];
  readonly redirects: readonly ShellRedirect[];
  /** This command reads its standard input from a pipe (`a | b`: true for b). */
  readonly pipedInto: boolean;
  /**
   * Where the command sits: `top` is a plain part of the line; `nested` came from inside a
   * substitution, subshell, group, control flow, function body, `eval` or an interpreter's
   * `-c` code. Nested commands are checked by the floor and by deny rules, never allowed.
   */
  readonly position: 'top' | 'nested';
  /** Reasons this one command cannot be allowed by a wildcard rule. */
  readonly opaque: readonly OpaqueReason[];
}

/** A parsed command line. */
export interface ShellAnalysis {
  readonly line: string;
  /** Every simple command found, top-level and nested, in source order. */
  readonly commands: readonly SimpleCommand[];
  /** Reasons the line as a whole cannot be allowed by a wildcard rule. */
  readonly opaque: readonly OpaqueReason[];
}

/** Where the paths the floor protects are, for the host that is deciding. */
export interface FloorContext {
  /** The receiving user's home directory, absolute, normalised. */
  readonly home: string;
  /** The daemon's own CMDOP_HOME, absolute, normalised. */
  readonly cmdopHome: string;
  /** The directory relative command arguments are taken against; defaults to `home`. */
  readonly cwd?: string;
}

/** Why the floor denied. */
export interface FloorHit {
  /** A short stable name for the floor entry (`protected_file`, `fork_bomb`, ...). */
  readonly entry: string;
  readonly reason: string;
}
