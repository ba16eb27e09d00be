/**
 * The local token (DESIGN.md §2, §5): a random secret in `run/` that the CLI presents to its own
 * daemon over the local socket and the operator channel, so nothing else on the machine can drive it.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN_BYTES = 32;

/** Makes a fresh local token: 32 random bytes, base64url (43 characters). */
export function createLocalToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/**
 * True when `presented` equals `expected`, compared in constant time whatever either length;
 * a missing or empty presented token, or an empty expected one, is never a match.
 */
export function checkLocalToken(expected: string, presented: string | undefined): boolean {
  if (presented === undefined || presented === '' || expected === '') return false;
  // Hashing first gives equal-length inputs, so timingSafeEqual neither throws nor leaks the length.
  const a = createHash('sha256').update(expected, 'utf8').digest();
  const b = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(a, b);
}
