import { describe, expect, it } from 'vitest';
import { createRefusalWindow } from '../../src/daemon/refusal-log.js';

const REVOKED = 'the API key "ci" was revoked';

describe('refusals before the gate', () => {
  // grpc-js reports `ip:port`; the `ipv4:`/`ipv6:` forms are what gRPC's other stacks write.
  it.each([
    ['grpc-js IPv4', (port: number) => `10.0.0.5:${port}`],
    ['ipv4: prefixed', (port: number) => `ipv4:10.0.0.5:${port}`],
    ['grpc-js IPv6', (port: number) => `[fd00::5]:${port}`],
    ['ipv6: prefixed', (port: number) => `ipv6:[fd00::5]:${port}`],
  ])('writes the first of a refusal per address (%s) in a window, whatever the port; counts repeats and reports them with the next line', (_form, at) => {
    const w = createRefusalWindow(1_000, 10);
    expect(w.admit(at(1000), REVOKED, 0)).toEqual({ write: true, suppressed: 0 });
    for (let i = 0; i < 50; i++) expect(w.admit(at(2000 + i), REVOKED, 10 + i).write).toBe(false);
    expect(w.admit('10.0.0.6:1000', REVOKED, 20)).toEqual({ write: true, suppressed: 0 });
    expect(w.admit(at(3000), REVOKED, 1_500)).toEqual({ write: true, suppressed: 50 });
  });

  it('writes each distinct refusal from one address, up to a bound, then counts', () => {
    const w = createRefusalWindow(1_000, 10, 3);
    expect(w.admit('10.0.0.5:1', REVOKED, 0).write).toBe(true);
    expect(w.admit('10.0.0.5:2', 'the share link 0daeb282 expired', 1).write).toBe(true);
    expect(w.admit('10.0.0.5:3', REVOKED, 2).write).toBe(false);
    expect(w.admit('10.0.0.5:4', 'the API key "admin" is not one this workspace issued', 3).write).toBe(true);
    // A flood of ever new reasons is bounded too.
    for (let i = 0; i < 20; i++) expect(w.admit('10.0.0.5:5', `forged ${i}`, 4 + i).write).toBe(false);
    expect(w.admit('10.0.0.5:6', 'forged 99', 2_000)).toEqual({ write: true, suppressed: 21 });
  });

  it('remembers a bounded number of addresses', () => {
    const w = createRefusalWindow(60_000, 3);
    for (let i = 0; i < 10; i++) expect(w.admit(`10.0.1.${i}:1`, REVOKED, i).write).toBe(true);
    // The first address was forgotten, so it is written again at once.
    expect(w.admit('10.0.1.0:2', REVOKED, 20).write).toBe(true);
  });
});
