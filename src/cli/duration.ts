import { CmdopError } from '../errors.js';

/** Parses `30s`, `15m`, `24h`, `7d` into milliseconds; anything else is CmdopError('invalid_input') naming `flag`. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d{1,9})([smhd])$/.exec(text.trim());
  const unitMs = m === null ? undefined : { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const amount = m === null ? 0 : Number(m[1]);
  if (unitMs === undefined || amount <= 0) {
    throw new CmdopError('invalid_input', `${flag} must be a positive duration such as 30m, 24h or 7d, not ${JSON.stringify(text)}`, { hint: `For example: ${flag} 30m` });
  }
  return amount * unitMs;
}
