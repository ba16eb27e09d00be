/** The one mapping between CmdopError codes and gRPC status codes, both ways. */
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { CmdopError, type ErrorCode } from '../../src/errors.js';
import { CODE_TRAILER, fromGrpcStatus, HINT_TRAILER, toGrpcStatus } from '../../src/transport/grpc-status.js';

const context = { method: 'ReadFile', address: '127.0.0.2:7443' };

describe('toGrpcStatus', () => {
  it.each<[ErrorCode, GrpcStatus, number]>([
    ['invalid_input', GrpcStatus.INVALID_ARGUMENT, 2],
    ['denied', GrpcStatus.PERMISSION_DENIED, 3],
    ['not_found', GrpcStatus.NOT_FOUND, 4],
    ['tool_failed', GrpcStatus.ABORTED, 5],
    ['config', GrpcStatus.FAILED_PRECONDITION, 6],
    ['unavailable', GrpcStatus.UNAVAILABLE, 7],
    ['rate_limited', GrpcStatus.RESOURCE_EXHAUSTED, 8],
    ['internal', GrpcStatus.INTERNAL, 1],
  ])('%s → gRPC %s, and back to the same code and exit code %d', (code, grpc, exitCode) => {
    const status = toGrpcStatus(new CmdopError(code, `it went ${code}`, { hint: 'do this — then that' }));
    expect(status.code).toBe(grpc);
    expect(status.details).toBe(`it went ${code}`);
    expect(status.metadata.get(CODE_TRAILER)).toEqual([code]);
    const back = fromGrpcStatus(status, context);
    expect(back).toMatchObject({ code, message: `it went ${code}`, hint: 'do this — then that' });
    expect(back.exitCode).toBe(exitCode);
  });

  it('a refusal while authenticating is UNAUTHENTICATED, code denied', () => {
    const status = toGrpcStatus(new CmdopError('denied', 'no certificate', { details: { stage: 'authentication' } }));
    expect(status.code).toBe(GrpcStatus.UNAUTHENTICATED);
    expect(status.metadata.get(CODE_TRAILER)).toEqual(['denied']);
  });

  it('sends no stack and cuts very long messages', () => {
    const status = toGrpcStatus(new CmdopError('internal', 'x'.repeat(10_000), { cause: new Error('inner') }));
    expect(status.details.length).toBeLessThanOrEqual(4096);
    expect(status.details).not.toMatch(/\n\s+at /);
    expect(status.metadata.get(HINT_TRAILER)).toEqual([]);
  });
});

describe('fromGrpcStatus without an x-cmdop-code (grpc-js itself, or a foreign peer)', () => {
  it.each<[GrpcStatus, ErrorCode]>([
    [GrpcStatus.UNAVAILABLE, 'unavailable'],
    [GrpcStatus.DEADLINE_EXCEEDED, 'unavailable'],
    [GrpcStatus.CANCELLED, 'unavailable'],
    [GrpcStatus.RESOURCE_EXHAUSTED, 'invalid_input'],
    [GrpcStatus.INVALID_ARGUMENT, 'invalid_input'],
    [GrpcStatus.UNAUTHENTICATED, 'denied'],
    [GrpcStatus.PERMISSION_DENIED, 'denied'],
    [GrpcStatus.NOT_FOUND, 'not_found'],
    [GrpcStatus.UNIMPLEMENTED, 'config'],
    [GrpcStatus.INTERNAL, 'internal'],
    [GrpcStatus.UNKNOWN, 'internal'],
  ])('gRPC %s → %s', (grpc, code) => {
    expect(fromGrpcStatus({ code: grpc, details: 'x', metadata: new Metadata() }, context).code).toBe(code);
  });

  it('an unknown x-cmdop-code is ignored in favour of the status', () => {
    const metadata = new Metadata();
    metadata.set(CODE_TRAILER, 'root');
    expect(fromGrpcStatus({ code: GrpcStatus.NOT_FOUND, details: 'x', metadata }, context).code).toBe('not_found');
  });

  it("the caller's own cancellation is tool_failed", () => {
    const error = fromGrpcStatus({ code: GrpcStatus.CANCELLED, details: 'Cancelled on client', metadata: new Metadata() }, { ...context, cancelledByCaller: true });
    expect(error.code).toBe('tool_failed');
  });
});
