import { describe, expect, it } from 'vitest';
import { createRefusalWindow } from '../../src/daemon/refusal-log.js';

describe('refusals before the gate', () => {
  it('writes the first per address in a window, counts the rest, and reports them with the next line', () => {
    const w = createRefusalWindow(1_000, 10);
    expect(w.admit('ipv4:10.0.0.5:1000', 0)).toEqual({ write: true, suppressed: 0 });
    for (let i = 0; i < 50; i++) expect(w.admit(`ipv4:10.0.0.5:${2000 + i}`, 10 + i).write).toBe(false);
    expect(w.admit('ipv4:10.0.0.6:1000', 20)).toEqual({ write: true, suppressed: 0 });
    expect(w.admit('ipv4:10.0.0.5:3000', 1_500)).toEqual({ write: true, suppressed: 50 });
  });

  it('remembers a bounded number of addresses', () => {
    const w = createRefusalWindow(60_000, 3);
    for (let i = 0; i < 10; i++) expect(w.admit(`ipv4:10.0.1.${i}:1`, i).write).toBe(true);
    // The first address was forgotten, so it is written again at once.
    expect(w.admit('ipv4:10.0.1.0:2', 20).write).toBe(true);
  });
});
