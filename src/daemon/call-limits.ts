/**
 * How many calls callers may have running on this host at once: each principal up to
 * `perCaller`, so a peer with an allow rule cannot start processes without end; and all
 * callers that are not hosts (keys, users, guests) together up to `bearerTotal`, since anyone
 * the OpenID provider signs in is a new principal. Beyond either, a call is refused at once
 * with CmdopError('rate_limited'), before the gate.
 */
import { CmdopError } from '../errors.js';
import type { RemoteCaller } from '../transport/mesh-handler.js';

export interface CallLimits {
  readonly perCaller: number;
  readonly bearerTotal: number;
}

export const DEFAULT_CALL_LIMITS: CallLimits = { perCaller: 256, bearerTotal: 512 };

export interface CallLimiter {
  /** Runs `fn` as one call of `caller`, or refuses it when a limit is reached. */
  run<T>(caller: RemoteCaller, fn: () => Promise<T>): Promise<T>;
}

export function createCallLimiter(hostName: string, limits: CallLimits = DEFAULT_CALL_LIMITS): CallLimiter {
  const inFlight = new Map<string, number>();
  let bearerInFlight = 0;
  const busy = (what: string): CmdopError => new CmdopError('rate_limited', `${what} on ${hostName}`, { hint: 'Wait for some to finish, then try again.' });
  return {
    async run(caller, fn) {
      const who = caller.principal;
      const bearer = (caller.credential ?? 'certificate') !== 'certificate';
      const now = inFlight.get(who) ?? 0;
      if (now >= limits.perCaller) throw busy(`${who} already has ${now} calls running`);
      if (bearer && bearerInFlight >= limits.bearerTotal) throw busy(`callers that are not hosts already have ${bearerInFlight} calls running`);
      inFlight.set(who, now + 1);
      if (bearer) bearerInFlight++;
      try {
        return await fn();
      } finally {
        if (bearer) bearerInFlight--;
        const left = (inFlight.get(who) ?? 1) - 1;
        if (left <= 0) inFlight.delete(who);
        else inFlight.set(who, left);
      }
    },
  };
}
