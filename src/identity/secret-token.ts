/**
 * The framing join tokens and API keys share: `<prefix>.<base64url JSON payload>.<base64url
 * secret>`. The holder shows the whole token; the issuer keeps only a hash binding the secret
 * to the payload, so neither part can be swapped for another's.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CmdopError } from '../errors.js';

/** Bytes of a token's secret. */
export const TOKEN_SECRET_BYTES = 32;
const MAX_TOKEN_LENGTH = 2048;
const BASE64URL = /^[A-Za-z0-9_-]+$/;

/** A token taken apart: the payload as sent (it is what the hash covers), its JSON, and the secret. */
export interface SplitSecretToken {
  readonly payload: string;
  readonly json: unknown;
  readonly secret: Buffer;
}

/**
 * Mints a token around `payload` (any JSON value) with a fresh secret; returns it with the
 * hash the issuer keeps.
 */
export function mintSecretToken(prefix: string, payload: unknown): { token: string; secretHash: string } {
  const encoded = Buffer.from(JSON.stringify(payload)).toString('base64url');
  const secret = randomBytes(TOKEN_SECRET_BYTES);
  return { token: `${prefix}.${encoded}.${secret.toString('base64url')}`, secretHash: hashTokenSecret(encoded, secret) };
}

/**
 * Takes a token apart, checking its shape only; `malformed(what)` makes the error, which must
 * never quote the token.
 */
export function splitSecretToken(token: string, prefix: string, malformed: (what: string) => CmdopError): SplitSecretToken {
  const text = token.trim();
  if (text.length > MAX_TOKEN_LENGTH) throw malformed('it is far too long');
  const parts = text.split('.');
  const [head, payload, secretText] = parts;
  if (parts.length !== 3 || head !== prefix || payload === undefined || secretText === undefined) {
    throw malformed(`expected three parts, "${prefix}.<payload>.<secret>"`);
  }
  if (!BASE64URL.test(payload)) throw malformed('its payload is not base64url');
  if (!BASE64URL.test(secretText)) throw malformed('its secret is not base64url');
  const secret = Buffer.from(secretText, 'base64url');
  if (secret.length !== TOKEN_SECRET_BYTES || secret.toString('base64url') !== secretText) throw malformed(`its secret is not ${TOKEN_SECRET_BYTES} bytes`);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw malformed('its payload is not JSON');
  }
  return { payload, json, secret };
}

/** sha256 over payload, `.` and secret, hex: what the issuer stores and compares. */
export function hashTokenSecret(payload: string, secret: Buffer): string {
  return createHash('sha256').update(payload).update('.').update(secret).digest('hex');
}
