/**
 * The base of every `cmdop` command: `--json` and `--debug` on all of them, and the one
 * mapping from errors to exit codes and messages (DESIGN.md §7). Users see what is wrong and
 * what to do, never a stack trace unless they ask for it with `--debug`.
 */
import { Command, Flags, Errors, type Interfaces } from '@oclif/core';
import { CmdopError, exitCodeFor, type ErrorCode } from '../errors.js';

export abstract class BaseCommand extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    debug: Flags.boolean({ description: 'Show stack traces and internal details on errors.', helpGroup: 'GLOBAL' }),
  };

  /** Sets the process exit code without throwing, for results that are not errors (a denial from `check`). */
  protected setExitCode(code: ErrorCode | 0): void {
    process.exitCode = code === 0 ? 0 : exitCodeFor(code);
  }

  protected override async catch(err: Interfaces.CommandError): Promise<void> {
    const error = toCmdopError(err);
    process.exitCode = error.exitCode;
    const debug = this.argv.includes('--debug');
    if (this.jsonEnabled()) {
      this.logJson({ error: { code: error.code, exit_code: error.exitCode, message: error.message, hint: error.hint ?? null, details: error.details ?? null } });
    } else {
      process.stderr.write(`Error: ${error.message}\n`);
      if (error.hint !== undefined) process.stderr.write(`${error.hint}\n`);
    }
    if (debug) process.stderr.write(`${(err.stack ?? String(err))}\n`);
    return Promise.resolve();
  }
}

/** Maps whatever a command threw to the error model; oclif's own parse errors are bad input. */
export function toCmdopError(err: unknown): CmdopError {
  if (err instanceof CmdopError) return err;
  if (err instanceof Errors.CLIError) {
    // oclif raises these for unknown flags, missing arguments and failed flag validation.
    const message = err.message.split('\n').filter((line) => !line.startsWith('See more help')).join('\n');
    return new CmdopError('invalid_input', message, { hint: 'Run the command with --help for its usage and examples.', cause: err });
  }
  return CmdopError.from(err);
}
