import { describe, expect, it } from 'vitest';
import { checkLocalToken, createLocalToken } from '../../src/identity/local-token.js';

describe('local token', () => {
  it('is 32 random bytes in base64url', () => {
    const token = createLocalToken();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Buffer.from(token, 'base64url')).toHaveLength(32);
    expect(createLocalToken()).not.toBe(token);
  });

  it('matches only the same token', () => {
    const token = createLocalToken();
    expect(checkLocalToken(token, token)).toBe(true);
    // An equal string that is not the same object.
    expect(checkLocalToken(token, Buffer.from(token).toString())).toBe(true);
  });

  it.each([
    ['another token', () => createLocalToken()],
    ['a prefix', (t: string) => t.slice(0, 20)],
    ['a longer string', (t: string) => `${t}x`],
    ['an empty string', () => ''],
    ['nothing', () => undefined],
    ['different case', (t: string) => t.toUpperCase()],
  ])('refuses %s without throwing', (_what, presented: (t: string) => string | undefined) => {
    const token = createLocalToken();
    expect(checkLocalToken(token, presented(token))).toBe(false);
  });

  it('never matches when no token is expected', () => {
    expect(checkLocalToken('', '')).toBe(false);
  });
});
