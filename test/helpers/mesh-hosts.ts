/**
 * Several cmdop hosts on one machine, as a user would run them: each its own CMDOP_HOME and
 * its own loopback address (127.0.0.2, .3, ...), real daemons started from the built binary,
 * joined with real tokens. Tests drive them with the CLI and read their files.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCmdop, type CmdopRun } from './run-cmdop.js';

export interface TestHost {
  readonly name: string;
  readonly home: string;
  /** The address it listens on, once started (`ip:port`). */
  address: string;
  run(args: readonly string[], options?: { stdin?: string; env?: Readonly<Record<string, string>> }): Promise<CmdopRun>;
  /** Runs with --json and parses stdout; fails the test with the output when it is not JSON. */
  json<T>(args: readonly string[]): Promise<{ code: number | null; body: T; stderr: string }>; // eslint-disable-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON shape it expects
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The daemon's pid from its pid file. */
  pid(): number;
  /** Audit records, parsed. */
  audit(): Record<string, unknown>[];
}

export interface WorkspaceOptions {
  /** One IP per host; default 127.0.0.2, 127.0.0.3, ... */
  readonly ips?: readonly string[];
  readonly askTimeoutSeconds?: number;
  readonly announceIntervalSeconds?: number;
  /** Wrap every command, for hosts in network namespaces (`['ip', 'netns', 'exec', 'ns1']`). */
  readonly wrap?: (index: number) => readonly string[] | undefined;
}

export function makeHost(name: string, ip: string, root: string, wrap?: readonly string[]): TestHost {
  const home = join(root, name);
  const run = (args: readonly string[], options: { stdin?: string; env?: Readonly<Record<string, string>> } = {}): Promise<CmdopRun> =>
    runCmdop(args, { home, ...(options.stdin === undefined ? {} : { stdin: options.stdin }), ...(options.env === undefined ? {} : { env: options.env }), ...(wrap === undefined ? {} : { wrap }) });
  const host: TestHost = {
    name,
    home,
    address: `${ip}:0`,
    run,
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the JSON shape it expects
    async json<T>(args: readonly string[]) {
      // Before `--`: after it, words belong to the remote command.
      const cut = args.indexOf('--');
      const r = await run(cut === -1 ? [...args, '--json'] : [...args.slice(0, cut), '--json', ...args.slice(cut)]);
      let body: T;
      try {
        body = JSON.parse(r.stdout) as T;
      } catch {
        throw new Error(`cmdop ${args.join(' ')} on ${name} did not print JSON (exit ${String(r.code)}):\n${r.stdout}\n${r.stderr}`);
      }
      return { code: r.code, body, stderr: r.stderr };
    },
    async start() {
      const r = await run(['agent', 'start', '--json']);
      if (r.code !== 0) throw new Error(`agent start on ${name} failed (exit ${String(r.code)}):\n${r.stdout}\n${r.stderr}`);
      const status = (JSON.parse(r.stdout) as { status: { listen_address: string } }).status;
      host.address = status.listen_address;
    },
    async stop() {
      await run(['agent', 'stop']);
    },
    pid() {
      return Number(readFileSync(join(home, 'run', 'agent.pid'), 'utf8').trim());
    },
    audit() {
      let text = '';
      try {
        text = readFileSync(join(home, 'logs', 'audit.log'), 'utf8');
      } catch {
        return [];
      }
      return text
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    },
  };
  return host;
}

/**
 * Makes a workspace: the first host inits it and starts; each next one joins with a fresh
 * token and starts. Returns the hosts and a cleanup that stops every daemon and removes the homes.
 */
export async function makeWorkspace(names: readonly string[], options: WorkspaceOptions = {}): Promise<{ hosts: TestHost[]; root: string; cleanup: () => Promise<void> }> {
  const root = mkdtempSync(join(tmpdir(), 'cmdop-mesh-'));
  const hosts: TestHost[] = names.map((name, i) => makeHost(name, options.ips?.[i] ?? `127.0.0.${i + 2}`, root, options.wrap?.(i)));
  const cleanup = async (): Promise<void> => {
    await Promise.all(hosts.map((h) => h.stop().catch(() => undefined)));
    rmSync(root, { recursive: true, force: true });
  };
  try {
    for (const [i, host] of hosts.entries()) {
      await mustRun(host, ['config', 'set', 'agent.listen', host.address]);
      await mustRun(host, ['config', 'set', 'permissions.ask_timeout', String(options.askTimeoutSeconds ?? 60)]);
      await mustRun(host, ['config', 'set', 'agent.announce_interval', String(options.announceIntervalSeconds ?? 1)]);
      if (i === 0) {
        await mustRun(host, ['workspace', 'init', '--name', 'test', '--host-name', host.name]);
      } else {
        const ca = hosts[0] as TestHost;
        const invite = await ca.json<{ token: string }>(['workspace', 'invite', '--ttl', '10m']);
        await mustRun(host, ['join', invite.body.token, '--server', ca.address, '--name', host.name]);
      }
      await host.start();
    }
  } catch (error) {
    await cleanup();
    throw error;
  }
  return { hosts, root, cleanup };
}

export async function mustRun(host: TestHost, args: readonly string[]): Promise<CmdopRun> {
  const r = await host.run(args);
  if (r.code !== 0) throw new Error(`cmdop ${args.join(' ')} on ${host.name} failed (exit ${String(r.code)}):\n${r.stdout}\n${r.stderr}`);
  return r;
}

/** Polls `check` every 100 ms until it returns a value, or fails after `timeoutMs` saying what was awaited. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last instanceof Error ? `: ${last.message}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
