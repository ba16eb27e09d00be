/**
 * The in-flight limits: per principal, and for all callers that are not hosts together, so a
 * provider that signs in anyone cannot be used to start calls without end. Hosts do not count
 * against the bearer total.
 */
import { describe, expect, it } from 'vitest';
import { createCallLimiter } from '../../src/daemon/call-limits.js';
import type { RemoteCaller } from '../../src/transport/mesh-handler.js';

const host = (name: string): RemoteCaller => ({ kind: 'remote', host: name, principal: `host:${name}` });
const user = (sub: string): RemoteCaller => ({ kind: 'remote', host: '', principal: `user:${sub}`, credential: 'oauth' });

/** A call that runs until released. */
function held(): { run: () => Promise<string>; release: () => void } {
  let release: () => void = () => undefined;
  const done = new Promise<string>((resolve) => {
    release = () => {
      resolve('done');
    };
  });
  return { run: () => done, release };
}

describe('call limits', () => {
  it('refuses a principal its call beyond the per-caller limit, and lets it in again when one ends', async () => {
    const limiter = createCallLimiter('beta', { perCaller: 2, bearerTotal: 100 });
    const a = held();
    const b = held();
    const first = limiter.run(host('alpha'), a.run);
    const second = limiter.run(host('alpha'), b.run);
    await expect(limiter.run(host('alpha'), () => Promise.resolve('x'))).rejects.toMatchObject({ code: 'rate_limited', message: 'host:alpha already has 2 calls running on beta' });
    // Another principal is not held up by alpha's calls.
    await expect(limiter.run(host('gamma'), () => Promise.resolve('gamma ok'))).resolves.toBe('gamma ok');
    a.release();
    await first;
    await expect(limiter.run(host('alpha'), () => Promise.resolve('again'))).resolves.toBe('again');
    b.release();
    await second;
  });

  it('bounds all callers that are not hosts together, however many principals they are; hosts are not counted', async () => {
    const limiter = createCallLimiter('beta', { perCaller: 10, bearerTotal: 3 });
    const calls = ['a', 'b', 'c'].map((sub) => ({ sub, call: held() }));
    const running = calls.map(({ sub, call }) => limiter.run(user(sub), call.run));
    await expect(limiter.run(user('d'), () => Promise.resolve('x'))).rejects.toMatchObject({ code: 'rate_limited', message: 'callers that are not hosts already have 3 calls running on beta' });
    await expect(limiter.run(host('alpha'), () => Promise.resolve('host ok'))).resolves.toBe('host ok');
    calls[0]?.call.release();
    await running[0];
    await expect(limiter.run(user('d'), () => Promise.resolve('d ok'))).resolves.toBe('d ok');
    for (const { call } of calls) call.release();
    await Promise.all(running);
  });

  it('counts a call out when it fails, too', async () => {
    const limiter = createCallLimiter('beta', { perCaller: 1, bearerTotal: 1 });
    await expect(limiter.run(user('a'), () => Promise.reject(new Error('tool failed')))).rejects.toThrow('tool failed');
    await expect(limiter.run(user('b'), () => Promise.resolve('ok'))).resolves.toBe('ok');
  });
});
