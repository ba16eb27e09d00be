import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import type { GateDecision, GateRequest } from '../../src/gate/types.js';
import { createApproval } from '../../src/tools/approval.js';
import { createToolsFixture, type ToolsFixture } from './tools-fixture.js';

let fx: ToolsFixture;

beforeAll(async () => {
  fx = await createToolsFixture('approval');
  mkdirSync(join(fx.root, 'public'));
  mkdirSync(join(fx.root, 'secret'));
  mkdirSync(join(fx.root, 'asked'));
});
afterAll(() => {
  fx.cleanup();
});

const allowedBy = (source: GateDecision['source']): GateDecision => ({ decision: 'allow', source, reason: `test: allowed (${source})` });

describe('createApproval', () => {
  it.each([
    ['a deny', { mode: 'strict', request: { tool: 'execute_command', target: 'ls' } }],
    ['an ask', { mode: 'default', request: { tool: 'write_file', target: '/tmp/x' } }],
  ] as const)('refuses %s decision with CmdopError denied', (_what, { mode, request }) => {
    const policy = fx.policy(mode);
    const decision = fx.gate.evaluate(request, policy);
    expect(decision.decision).not.toBe('allow');
    const error = (() => {
      try {
        createApproval(fx.gate, policy, request, decision);
        return undefined;
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(CmdopError);
    expect(error).toMatchObject({ code: 'denied', exitCode: 3 });
  });

  it('binds the request and the decision, frozen', () => {
    const request: GateRequest = { tool: 'read_file', target: join(fx.root, 'public', 'a') };
    const approval = fx.approve(request);
    expect(approval.request).toEqual(request);
    expect(approval.decision.decision).toBe('allow');
    expect(Object.isFrozen(approval)).toBe(true);
    expect(Object.isFrozen(approval.request)).toBe(true);
  });
});

describe('recheckPath', () => {
  const policyWithRules = (): ReturnType<ToolsFixture['policy']> =>
    fx.policy('default', { deny: [`read_file(${fx.root}/secret/**)`], ask: [`read_file(${fx.root}/asked/**)`] });

  it('allows what the gate allows and denies what it denies, as the same tool', () => {
    const policy = policyWithRules();
    const request: GateRequest = { tool: 'read_file', target: join(fx.root, 'public', 'a') };
    const approval = createApproval(fx.gate, policy, request, fx.gate.evaluate(request, policy));
    expect(approval.recheckPath(join(fx.root, 'public', 'b')).decision).toBe('allow');
    expect(approval.recheckPath(join(fx.root, 'secret', 'a'))).toMatchObject({ decision: 'deny', source: 'rule' });
    expect(approval.recheckPath(join(fx.home, '.ssh', 'id_ed25519'))).toMatchObject({ decision: 'deny', source: 'floor' });
  });

  it('lets an operator-answered ask stand for the exact path that was shown, and no other', () => {
    const policy = policyWithRules();
    const request: GateRequest = { tool: 'read_file', target: join(fx.root, 'asked', 'a') };
    expect(fx.gate.evaluate(request, policy).decision).toBe('ask');
    // The daemon mints the approval once the operator has answered "allow once".
    const approval = createApproval(fx.gate, policy, request, allowedBy('rule'));
    expect(approval.recheckPath(join(fx.root, 'asked', 'a')).decision).toBe('allow');
    expect(approval.recheckPath(join(fx.root, 'asked', 'b')).decision).toBe('ask');
  });

  it('holds a self call to the floor only, and the local operator to nothing', () => {
    const policy = policyWithRules();
    const request: GateRequest = { tool: 'read_file', target: join(fx.root, 'public', 'a') };
    const self = createApproval(fx.gate, policy, request, allowedBy('self'));
    expect(self.recheckPath(join(fx.root, 'secret', 'a')).decision).toBe('allow');
    expect(self.recheckPath(join(fx.home, '.ssh', 'id_ed25519'))).toMatchObject({ decision: 'deny', source: 'floor' });
    const local = createApproval(fx.gate, policy, request, allowedBy('local'));
    expect(local.recheckPath(join(fx.home, '.ssh', 'id_ed25519')).decision).toBe('allow');
  });

  it('applies to path tools only', () => {
    const approval = fx.approve({ tool: 'execute_command', target: 'true' });
    expect(() => approval.recheckPath('/tmp')).toThrow(CmdopError);
  });
});
