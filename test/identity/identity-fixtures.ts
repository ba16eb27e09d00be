/** Test helpers for src/identity: temporary directories, refusals asserted by structure, issued certificates. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import { CmdopError, type ErrorCode } from '../../src/errors.js';
import { createHostKeyAndCsr, signHostCsr, type SignHostCsrOptions } from '../../src/identity/host-cert.js';
import type { WorkspaceCa } from '../../src/identity/workspace-ca.js';

/** Creates a fresh private temporary directory. */
export async function createTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'cmdop-identity-test-'));
}

/** Removes a directory made by {@link createTempDir}. */
export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
}

/** Runs `fn`, which must throw (or reject with) a CmdopError of `code`, and returns the error. */
export async function refusal(code: ErrorCode, fn: () => unknown): Promise<CmdopError> {
  let error: unknown;
  try {
    await fn();
  } catch (caught) {
    error = caught;
  }
  expect(error).toBeInstanceOf(CmdopError);
  const cmdopError = error as CmdopError;
  expect(cmdopError.code).toBe(code);
  return cmdopError;
}

/** A host's key and certificate, as `cmdop join` leaves them. */
export interface IssuedHost {
  readonly keyPem: string;
  readonly certPem: string;
}

/** Makes a key and CSR for `hostName` and has `ca` sign it. */
export async function issueHost(ca: WorkspaceCa, hostName: string, options: Omit<SignHostCsrOptions, 'hostName'> = {}): Promise<IssuedHost> {
  const { keyPem, csrPem } = await createHostKeyAndCsr(hostName);
  const certPem = await signHostCsr(ca, csrPem, { ...options, hostName });
  return { keyPem, certPem };
}

/** Adds days to a date. */
export function daysAfter(date: Date, days: number): Date {
  return new Date(date.getTime() + days * 24 * 60 * 60 * 1000);
}
