/**
 * The one mapping between CmdopError and gRPC status (STYLE.md habit 4). The server sends the
 * gRPC code a generic gRPC client understands, plus the exact CmdopError code in the trailer
 * `x-cmdop-code` and the hint in `x-cmdop-hint-bin`; the message goes in the status details.
 * A stack trace never leaves the host.
 */
import { Metadata, status as GrpcStatus, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { CmdopError, isErrorCode, type ErrorCode } from '../errors.js';

/** Trailer carrying the CmdopError code of a failed call. */
export const CODE_TRAILER = 'x-cmdop-code';
/** Trailer carrying the error's hint, UTF-8 (binary, so any text survives HTTP/2 header rules). */
export const HINT_TRAILER = 'x-cmdop-hint-bin';
/** A gate's refusal carries its decision (JSON), so the caller can say who decided what and why. */
const DECISION_TRAILER = 'x-cmdop-decision-bin';

/** Longest status message sent; longer ones are cut, so an error cannot blow up the trailers. */
const MAX_DETAILS = 4096;

/**
 * CmdopError code → gRPC status code. `tool_failed` is ABORTED: the operation started and did
 * not complete (UNKNOWN would hide that the peer understood the call).
 */
export const GRPC_CODE_FOR: Readonly<Record<ErrorCode, GrpcStatus>> = Object.freeze({
  invalid_input: GrpcStatus.INVALID_ARGUMENT,
  denied: GrpcStatus.PERMISSION_DENIED,
  not_found: GrpcStatus.NOT_FOUND,
  tool_failed: GrpcStatus.ABORTED,
  config: GrpcStatus.FAILED_PRECONDITION,
  unavailable: GrpcStatus.UNAVAILABLE,
  rate_limited: GrpcStatus.RESOURCE_EXHAUSTED,
  internal: GrpcStatus.INTERNAL,
});

/**
 * gRPC status code → CmdopError code, for statuses that carry no `x-cmdop-code` (made by
 * grpc-js itself, or by a peer that is not cmdop). DEADLINE_EXCEEDED is 'unavailable' (exit 7):
 * the peer did not answer in time, so the caller knows no more than when it is unreachable.
 * RESOURCE_EXHAUSTED without a cmdop code is grpc-js refusing a message over the size limit,
 * so 'invalid_input'. UNIMPLEMENTED means the peer runs a version without the call: 'config'.
 */
export const CMDOP_CODE_FOR: Readonly<Partial<Record<GrpcStatus, ErrorCode>>> = Object.freeze({
  [GrpcStatus.INVALID_ARGUMENT]: 'invalid_input',
  [GrpcStatus.OUT_OF_RANGE]: 'invalid_input',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'invalid_input',
  [GrpcStatus.PERMISSION_DENIED]: 'denied',
  [GrpcStatus.UNAUTHENTICATED]: 'denied',
  [GrpcStatus.NOT_FOUND]: 'not_found',
  [GrpcStatus.ABORTED]: 'tool_failed',
  [GrpcStatus.FAILED_PRECONDITION]: 'config',
  [GrpcStatus.UNIMPLEMENTED]: 'config',
  [GrpcStatus.UNAVAILABLE]: 'unavailable',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'unavailable',
  [GrpcStatus.CANCELLED]: 'unavailable',
  [GrpcStatus.INTERNAL]: 'internal',
  [GrpcStatus.UNKNOWN]: 'internal',
  [GrpcStatus.DATA_LOSS]: 'internal',
});


/**
 * Turns a CmdopError into the status a server sends. A refusal made while authenticating the
 * caller (details `stage: 'authentication'`) is UNAUTHENTICATED rather than PERMISSION_DENIED.
 */
export function toGrpcStatus(error: CmdopError): StatusObject {
  const metadata = new Metadata();
  metadata.set(CODE_TRAILER, error.code);
  if (error.hint !== undefined) metadata.set(HINT_TRAILER, Buffer.from(error.hint, 'utf8'));
  const decision = error.details?.['decision'];
  if (error.code === 'denied' && typeof decision === 'object' && decision !== null) metadata.set(DECISION_TRAILER, Buffer.from(JSON.stringify(decision), 'utf8'));
  const code = error.details?.['stage'] === 'authentication' ? GrpcStatus.UNAUTHENTICATED : GRPC_CODE_FOR[error.code];
  const details = error.message.length > MAX_DETAILS ? `${error.message.slice(0, MAX_DETAILS - 3)}...` : error.message;
  return { code, details, metadata };
}

/** What the client knows about a failed call besides the status itself. */
export interface FailedCallContext {
  /** Which RPC failed, and on which address, for the message. */
  readonly method: string;
  readonly address: string;
  /** True when the caller's own AbortSignal cancelled the call. */
  readonly cancelledByCaller?: boolean;
  /** The deadline the call had, in ms, when it had one. */
  readonly timeoutMs?: number;
  /** Why the client refused the server's certificate, when it did. */
  readonly serverIdentityError?: string;
}

/**
 * Turns a failed call's status into a CmdopError: the peer's `x-cmdop-code` when present and
 * known, else {@link CMDOP_CODE_FOR}; a cancellation by the caller itself is 'tool_failed'
 * (the call did not complete, and nobody is to blame but the caller).
 */
export function fromGrpcStatus(failure: Pick<ServiceError, 'code' | 'details'> & { readonly metadata?: Metadata | undefined }, context: FailedCallContext): CmdopError {
  const grpcName = GrpcStatus[failure.code] as string | undefined;
  const details = { grpc_status: grpcName ?? String(failure.code), method: context.method, address: context.address };
  if (context.cancelledByCaller === true && failure.code === GrpcStatus.CANCELLED) {
    return new CmdopError('tool_failed', `the ${context.method} call to ${context.address} was cancelled by the caller; the peer was told to stop`, { details });
  }
  const sent = failure.metadata?.get(CODE_TRAILER)[0];
  const peerCode = isErrorCode(sent) ? sent : undefined;
  const hintValue = failure.metadata?.get(HINT_TRAILER)[0];
  const hint = Buffer.isBuffer(hintValue) ? hintValue.toString('utf8') : undefined;
  if (peerCode !== undefined) {
    const decision = peerCode === 'denied' ? readDecision(failure.metadata?.get(DECISION_TRAILER)[0]) : undefined;
    return new CmdopError(peerCode, failure.details || `${context.method} failed on ${context.address}`, {
      ...(hint === undefined ? {} : { hint }),
      details: decision === undefined ? details : { ...details, decision },
    });
  }
  const code = CMDOP_CODE_FOR[failure.code] ?? 'internal';
  return new CmdopError(code, describeLocal(failure, context, code), { details, ...localHint(failure.code, context) });
}

function describeLocal(failure: Pick<ServiceError, 'code' | 'details'>, context: FailedCallContext, code: ErrorCode): string {
  const where = `${context.method} on ${context.address}`;
  if (context.serverIdentityError !== undefined) {
    return `${where}: the server was refused: ${context.serverIdentityError}`;
  }
  switch (failure.code) {
    case GrpcStatus.DEADLINE_EXCEEDED:
      return `${where} did not answer within ${context.timeoutMs === undefined ? 'its deadline' : `${context.timeoutMs} ms`}`;
    case GrpcStatus.UNAVAILABLE:
      return `${where} is unreachable: ${failure.details}`;
    case GrpcStatus.UNAUTHENTICATED:
      return `${where}: the peer refused this host's certificate: ${failure.details}`;
    case GrpcStatus.RESOURCE_EXHAUSTED:
      return `${where}: the message is larger than the limit: ${failure.details}`;
    default:
      return `${where} failed (${code}): ${failure.details}`;
  }
}

function localHint(code: GrpcStatus, context: FailedCallContext): { hint?: string } {
  if (context.serverIdentityError !== undefined) {
    return { hint: 'The address does not lead to the expected host of this workspace; check the peer address (cmdop peers list).' };
  }
  if (code === GrpcStatus.UNAVAILABLE || code === GrpcStatus.DEADLINE_EXCEEDED) {
    return { hint: 'Check that the peer daemon runs (cmdop agent status on it) and that the address is reachable.' };
  }
  return {};
}

/** The decision trailer of a refusal, if it is one: `{decision, source, reason, rule?, rule_id?, scope?}` as strings. */
function readDecision(value: unknown): Readonly<Record<string, string>> | undefined {
  if (!Buffer.isBuffer(value) || value.length > 16 * 1024) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const out: Record<string, string> = {};
  for (const key of ['decision', 'source', 'reason', 'rule', 'rule_id', 'scope']) {
    const v = (parsed as Record<string, unknown>)[key];
    if (typeof v === 'string') out[key] = v;
  }
  return typeof out.decision === 'string' && typeof out.reason === 'string' ? out : undefined;
}
