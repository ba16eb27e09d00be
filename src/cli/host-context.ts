/**
 * What a local `cmdop` command needs to know about this host: where its state lives, its
 * policy compiled from permissions.yaml and config.yaml, and a gate to ask. Commands call
 * these functions; none of them reads the files itself.
 */
import { homedir, hostname } from 'node:os';
import { loadConfig, type CmdopConfig } from '../config/config-file.js';
import { resolveCmdopHome } from '../config/cmdop-home.js';
import { loadPermissions, type PermissionsDoc, type PermissionsTest } from '../config/permissions-file.js';
import { CmdopError } from '../errors.js';
import { decideForCaller, type Caller } from '../gate/caller.js';
import { createGate, type Gate } from '../gate/gate.js';
import { compilePolicy, type Policy } from '../gate/policy.js';
import type { Decision, GateDecision, GateRequest } from '../gate/types.js';
import { createFsPathResolver } from '../platform/fs-path-resolver.js';

/** This host, as the local CLI sees it. */
export interface HostContext {
  readonly cmdopHome: string;
  /** The receiving user's home directory. */
  readonly userHome: string;
  /** This host's name: how its own calls are recognised (issue 3 moves this to its certificate). */
  readonly hostName: string;
  readonly gate: Gate;
}

let sharedGate: Promise<Gate> | undefined;

/** Opens the context for the current process environment (CMDOP_HOME, HOME). */
export async function openHostContext(env: Readonly<Record<string, string | undefined>> = process.env): Promise<HostContext> {
  const cmdopHome = resolveCmdopHome(env);
  const userHome = homedir();
  sharedGate ??= createGate({ home: userHome, cmdopHome, resolver: createFsPathResolver() });
  return { cmdopHome, userHome, hostName: hostname().toLowerCase(), gate: await sharedGate };
}

/** Compiles a policy from a permissions document and the config. */
export function policyFrom(doc: PermissionsDoc, config: CmdopConfig, userHome: string): Policy {
  return compilePolicy({
    mode: doc.mode,
    enabled: config.permissions.enabled,
    rules: { allow: doc.allow, deny: doc.deny, ask: doc.ask },
    reasons: doc.reasons,
    home: userHome,
  });
}

/** Loads and compiles this host's policy; a broken file is a configuration error (exit 6). */
export async function loadHostPolicy(context: HostContext): Promise<{ doc: PermissionsDoc; config: CmdopConfig; policy: Policy }> {
  const [doc, config] = await Promise.all([loadPermissions(context.cmdopHome), loadConfig(context.cmdopHome)]);
  return { doc, config, policy: policyFrom(doc, config, context.userHome) };
}

/** Decides a request as if it came from `fromHost` (a remote host), or from a peer when absent. */
export function checkRequest(context: HostContext, policy: Policy, config: CmdopConfig, request: GateRequest, fromHost?: string): GateDecision {
  const caller: Caller = { kind: 'remote', host: fromHost ?? 'remote-peer', principal: `host:${(fromHost ?? 'remote-peer').toLowerCase()}` };
  return decideForCaller(context.gate, policy, { self: { host: context.hostName, principal: `host:${context.hostName}` }, selfBypass: config.permissions.self_bypass }, caller, request);
}

/** One `tests:` entry and what the gate decided for it. */
export interface PolicyTestResult {
  readonly request: GateRequest;
  readonly written: string;
  readonly line: number | undefined;
  readonly expect: Decision;
  readonly got: Decision;
  readonly reason: string;
  readonly pass: boolean;
}

function describeTest(test: PermissionsTest): string {
  if (typeof test.written === 'string') return test.written;
  const op = test.request.operation === undefined ? '' : `${test.request.operation}:`;
  return `${test.request.tool}(${op}${test.request.target})`;
}

/** Runs a document's `tests:` section through the gate, as a remote peer would be decided. */
export function runPolicyTests(context: HostContext, doc: PermissionsDoc, config: CmdopConfig): PolicyTestResult[] {
  const policy = policyFrom(doc, config, context.userHome);
  return doc.tests.map((test) => {
    const decision = context.gate.evaluate(test.request, policy);
    return {
      request: test.request,
      written: describeTest(test),
      line: test.line,
      expect: test.expect,
      got: decision.decision,
      reason: decision.reason,
      pass: decision.decision === test.expect,
    };
  });
}

/** A validate hook for updatePermissions: refuses a change that breaks a test, naming each one. */
export function refuseBrokenTests(context: HostContext, config: CmdopConfig): (doc: PermissionsDoc) => void {
  return (doc) => {
    const failures = runPolicyTests(context, doc, config).filter((r) => !r.pass);
    if (failures.length === 0) return;
    const list = failures.map((f) => `${f.line === undefined ? '' : `line ${f.line}: `}${f.written} expects ${f.expect}, would be ${f.got}`).join('; ');
    throw new CmdopError('invalid_input', `refused: the change would break ${failures.length} test${failures.length === 1 ? '' : 's'} in permissions.yaml: ${list}`, {
      hint: 'Nothing was changed. Fix or remove the test first, or make a narrower change.',
      details: { failures },
    });
  };
}
