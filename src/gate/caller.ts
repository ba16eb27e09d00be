/**
 * Who is gated (DESIGN.md §4.5), decided from the authenticated channel only: the local
 * operator is not gated; a call whose verified host and principal are this host's own is not
 * gated (unless self-bypass is off); everyone else passes the gate. The floor applies to all
 * but the local operator, who already holds a shell on this machine.
 */
import type { Gate } from './gate.js';
import { compilePolicy, EMPTY_RULES, type Policy } from './policy.js';
import type { GateDecision, GateRequest } from './types.js';

/** The authenticated caller of one request, as the transport established it. */
export type Caller =
  | { readonly kind: 'local' }
  | {
      readonly kind: 'remote';
      readonly host: string;
      readonly principal: string;
      /** SHA-256 of the caller's verified certificate, when the transport knows it. */
      readonly certificate?: string | undefined;
      /**
       * How the caller proved who it is: a host certificate (the default), or a bearer
       * credential of a principal that is not a host (an API key, an OAuth access token, a
       * share token). A bearer caller has no host: `host` is empty and it is never this host.
       */
      readonly credential?: CallerCredential | undefined;
      /** Where a bearer call came from, as the network reports it: for the audit log, never evidence of identity. */
      readonly address?: string | undefined;
    };

/** The kinds of credential a remote caller can present. */
export type CallerCredential = 'certificate' | 'api_key' | 'oauth' | 'share';

export interface SelfIdentity {
  readonly host: string;
  readonly principal: string;
  /**
   * The fingerprints of this host's own certificates (the current one, and the one before a
   * renewal). When given, a caller is this host only if it holds one of them: a second
   * certificate that merely names this host is somebody else.
   */
  readonly certificates?: ReadonlySet<string> | undefined;
}

export interface CallerPolicy {
  readonly self: SelfIdentity;
  /** `permissions.self_bypass`. */
  readonly selfBypass: boolean;
}

/** True when the verified caller is this host acting as itself. */
export function isSelf(caller: Caller, self: SelfIdentity): boolean {
  if (caller.kind !== 'remote' || (caller.credential ?? 'certificate') !== 'certificate' || caller.host.toLowerCase() !== self.host.toLowerCase() || caller.principal !== self.principal) return false;
  if (self.certificates === undefined) return true;
  return caller.certificate !== undefined && self.certificates.has(caller.certificate);
}

/** Decides a request for an authenticated caller. */
export function decideForCaller(gate: Gate, policy: Policy, callerPolicy: CallerPolicy, caller: Caller, request: GateRequest): GateDecision {
  if (caller.kind === 'local') {
    return { decision: 'allow', source: 'local', reason: 'local operator on the local socket: not gated' };
  }
  if (callerPolicy.selfBypass && isSelf(caller, callerPolicy.self)) {
    const floorOnly = compilePolicy({ mode: 'bypass', enabled: false, rules: EMPTY_RULES, home: policy.home });
    const decision = gate.evaluate(request, floorOnly);
    if (decision.source === 'floor') return decision;
    return { decision: 'allow', source: 'self', reason: `the caller is this host (${callerPolicy.self.host}) acting as itself: not gated; the floor still applies` };
  }
  return gate.evaluate(request, policy);
}
