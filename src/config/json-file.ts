/**
 * Parsing a JSON state file against its schema: one place for the two ways it can be damaged
 * (not JSON, or not the expected shape), both reported by the caller's `damaged`, which names
 * the file and says what to do.
 */
import type { z } from 'zod';
import type { CmdopError } from '../errors.js';

export function parseJsonState<T>(text: string, schema: z.ZodType<T, z.ZodTypeDef, unknown>, damaged: (cause: unknown) => CmdopError): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw damaged(error);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) throw damaged(parsed.error);
  return parsed.data;
}
