/** Checks on the numeric options every tool takes, with errors that name the option. */
import { CmdopError } from '../errors.js';

/** One mebibyte, the default output and read cap. */
export const MIB = 1024 * 1024;

/** Returns `value` when it is a whole number within [min, max], else throws CmdopError('invalid_input'). */
export function boundedInteger(name: string, value: number, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new CmdopError('invalid_input', `${name} must be a whole number from ${min} to ${max}, not ${String(value)}`);
  }
  return value;
}
