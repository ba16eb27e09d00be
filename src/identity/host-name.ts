/**
 * Host names (DESIGN.md §1): one DNS label, unique in the workspace, compared
 * case-insensitively, so they are stored and certified in lower case.
 */
import { CmdopError } from '../errors.js';

// The `i` flag without `u` never folds a non-ASCII character (such as the Kelvin sign) into ASCII.
const HOST_NAME = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/i;

/** True when `name` is a valid host name in any letter case (one DNS label: a-z, 0-9, inner hyphens, 1 to 63 characters). */
export function isValidHostName(name: string): boolean {
  return HOST_NAME.test(name);
}

/** Returns the host name lower-cased, or throws CmdopError('invalid_input') saying what a host name may be. */
export function normalizeHostName(name: string): string {
  if (!isValidHostName(name)) {
    throw new CmdopError('invalid_input', `${JSON.stringify(name.slice(0, 80))} is not a valid host name: use 1 to 63 letters, digits and inner hyphens (one DNS label, such as vps-audi)`, {
      hint: 'Pick another name with --name.',
    });
  }
  return name.toLowerCase();
}
