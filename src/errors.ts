/**
 * The one error model of cmdop-mesh: a closed set of codes, each with one exit code
 * (DESIGN.md §7). Messages say what is wrong and what to do next.
 */

export type ErrorCode =
  | 'internal'
  | 'invalid_input'
  | 'denied'
  | 'not_found'
  | 'tool_failed'
  | 'config'
  | 'unavailable'
  | 'rate_limited';

const EXIT_CODES: Readonly<Record<ErrorCode, number>> = {
  internal: 1,
  invalid_input: 2,
  denied: 3,
  not_found: 4,
  tool_failed: 5,
  config: 6,
  unavailable: 7,
  rate_limited: 8,
};

export interface CmdopErrorOptions {
  readonly cause?: unknown;
  /** What the user can do about it, printed on its own line after the message. */
  readonly hint?: string;
  /** Structured details for `--json` output; never secrets. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export class CmdopError extends Error {
  override readonly name = 'CmdopError';
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: CmdopErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
  }

  get exitCode(): number {
    return EXIT_CODES[this.code];
  }

  /** Wraps anything thrown into a CmdopError, keeping a CmdopError as it is. */
  static from(reason: unknown, code: ErrorCode = 'internal'): CmdopError {
    if (reason instanceof CmdopError) return reason;
    if (reason instanceof Error) return new CmdopError(code, reason.message, { cause: reason });
    return new CmdopError(code, String(reason));
  }
}

/** True for one of the codes above: for a code that arrives from another process. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(EXIT_CODES, value);
}

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_CODES[code];
}

/** Node's system errors carry a string `code` such as ENOENT; this reads it safely. */
export function systemErrorCode(reason: unknown): string | undefined {
  if (typeof reason === 'object' && reason !== null && 'code' in reason) {
    const { code } = reason;
    return typeof code === 'string' ? code : undefined;
  }
  return undefined;
}
