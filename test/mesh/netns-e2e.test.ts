/**
 * Two hosts in two Linux network namespaces, joined by a veth pair: each has its own IP
 * address and sees no loopback of the other. north makes the workspace, south joins over the
 * link, and they call each other with the built binary. Where namespaces cannot be made (not
 * root, no iproute2) this file fails with the reason; it never skips.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, makeWorkspace, mustRun, type TestHost } from '../helpers/mesh-hosts.js';
import { makeNetnsPair, type NetnsPair } from '../helpers/netns.js';

let netns: NetnsPair | undefined;
let stopHosts: (() => Promise<void>) | undefined;
let north: TestHost;
let south: TestHost;

beforeAll(async () => {
  netns = await makeNetnsPair();
  const { names, ips } = netns;
  const workspace = await makeWorkspace(['north', 'south'], { ips, wrap: (i) => ['ip', 'netns', 'exec', names[i] as string] });
  stopHosts = workspace.cleanup;
  [north, south] = workspace.hosts as [TestHost, TestHost];
}, 120_000);

afterAll(async () => {
  // The daemons stop inside their namespaces before the namespaces go.
  try {
    await stopHosts?.();
  } finally {
    await netns?.cleanup();
  }
}, 60_000);

interface PeerRow {
  name: string;
  address: string;
  online: boolean;
}

// Prints the IPv4 addresses of the namespace it runs in.
const SHOW_ADDRESSES = 'ip -4 -o addr show';

describe('hosts in separate network namespaces', () => {
  it('each daemon runs inside its own namespace and listens on that namespace address', async () => {
    const { names, ips } = netns as NetnsPair;
    expect(north.address).toMatch(new RegExp(`^${ips[0].replaceAll('.', '\\.')}:\\d+$`));
    expect(south.address).toMatch(new RegExp(`^${ips[1].replaceAll('.', '\\.')}:\\d+$`));
    expect(await (netns as NetnsPair).pids(names[0])).toContain(north.pid());
    expect(await (netns as NetnsPair).pids(names[1])).toContain(south.pid());
  });

  it('each host sees the other online at its namespace address', async () => {
    for (const [host, other] of [[north, south], [south, north]] as const) {
      await eventually(`${host.name} to see ${other.name} online at ${other.address}`, async () => {
        const { body } = await host.json<{ peers: PeerRow[] }>(['peers', 'list']);
        return body.peers.some((p) => p.name === other.name && p.online && p.address === other.address) ? true : undefined;
      }, 30_000);
    }
  });

  it("south calls north: the command runs in north's namespace and north's audit names south", async () => {
    const { ips } = netns as NetnsPair;
    await mustRun(north, ['permissions', 'allow', `execute_command(${SHOW_ADDRESSES})`]);
    const r = await south.run(['connect', 'exec', 'north', '--', SHOW_ADDRESSES]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`inet ${ips[0]}/24`);
    expect(r.stdout).not.toContain(ips[1]);
    const lines = north.audit().filter((l) => l.target === SHOW_ADDRESSES);
    expect(lines.map((l) => l.event)).toEqual(['decision', 'outcome']);
    expect(lines[0]).toMatchObject({ decision: 'allow', source: 'rule', hostname: 'south', user: 'host:south', tool: 'execute_command' });
    expect(lines[1]).toMatchObject({ outcome: { status: 'ok', exit_code: 0 } });
  });

  it("north calls south and is denied: exit 3, nothing runs, south's audit names north", async () => {
    await mustRun(south, ['permissions', 'deny', 'execute_command(ip *)']);
    const r = await north.run(['connect', 'exec', 'south', '--', SHOW_ADDRESSES]);
    expect(r.code).toBe(3);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/denied by south/);
    const lines = south.audit().filter((l) => l.target === SHOW_ADDRESSES);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ event: 'decision', decision: 'deny', source: 'rule', rule: 'execute_command(ip *)', hostname: 'north', user: 'host:north' });
  });
});
