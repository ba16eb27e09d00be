/**
 * Two Linux network namespaces joined by a veth pair, for tests where hosts must have really
 * different IP addresses rather than loopback aliases. Needs root (CAP_NET_ADMIN and
 * CAP_SYS_ADMIN) and iproute2; where they are missing, `makeNetnsPair` throws an error saying
 * so, and the test fails rather than skips.
 */
import { execFile, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';

export interface NetnsPair {
  /** The two namespace names, for `ip netns exec NAME`. */
  readonly names: readonly [string, string];
  /** The address of each namespace on the link between them. */
  readonly ips: readonly [string, string];
  /** The pids of the processes running inside a namespace. */
  pids(name: string): Promise<number[]>;
  /** Kills anything left inside the namespaces, then removes them and the link. Safe to call twice. */
  cleanup(): Promise<void>;
}

const IP_TIMEOUT_MS = 10_000;

/** Runs `ip ARGS`; rejects with the command and its stderr when it fails. */
function ip(args: readonly string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('ip', args, { timeout: IP_TIMEOUT_MS, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error === null) {
        resolve(stdout);
        return;
      }
      const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'the `ip` command was not found' : stderr.trim() || error.message;
      reject(new Error(`\`ip ${args.join(' ')}\` failed: ${why}`));
    });
  });
}

/**
 * Makes two namespaces with unique names, links them with a veth pair addressed in a private
 * /24, brings up lo and the link, and checks that a TCP connection crosses it.
 */
export async function makeNetnsPair(): Promise<NetnsPair> {
  const tag = `${process.pid}`;
  const names = [`cmdop-${tag}-a`, `cmdop-${tag}-b`] as const;
  // Interface names are limited to 15 characters.
  const links = [`cmva${tag}`.slice(0, 15), `cmvb${tag}`.slice(0, 15)] as const;
  // Both ends live only inside the namespaces, so this subnet cannot clash with the host's.
  const subnet = `10.231.${(process.pid % 250) + 1}`;
  const ips = [`${subnet}.1`, `${subnet}.2`] as const;

  let cleaned = false;
  const pids = async (name: string): Promise<number[]> => {
    const out = await ip(['netns', 'pids', name]).catch(() => '');
    return out.split('\n').filter((l) => l.trim() !== '').map(Number);
  };
  const cleanup = async (): Promise<void> => {
    if (cleaned) return;
    cleaned = true;
    for (const name of names) {
      // Only this test starts processes in these namespaces; a daemon that outlived
      // `agent stop` would keep the namespace alive.
      for (const pid of await pids(name)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }
      await ip(['netns', 'del', name]).catch(() => undefined);
    }
    // Deleting a namespace deletes the veth ends inside it; this catches one left outside.
    for (const link of links) await ip(['link', 'del', link]).catch(() => undefined);
  };

  try {
    for (const name of names) await ip(['netns', 'add', name]);
    await ip(['link', 'add', links[0], 'netns', names[0], 'type', 'veth', 'peer', 'name', links[1], 'netns', names[1]]);
    for (const i of [0, 1] as const) {
      await ip(['-n', names[i], 'link', 'set', 'lo', 'up']);
      await ip(['-n', names[i], 'addr', 'add', `${ips[i]}/24`, 'dev', links[i]]);
      await ip(['-n', names[i], 'link', 'set', links[i], 'up']);
    }
  } catch (error) {
    await cleanup();
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`network namespaces cannot be made here: ${why}; run the tests as root (CAP_NET_ADMIN and CAP_SYS_ADMIN) with iproute2 installed`);
  }

  try {
    await checkTcp(names, ips);
  } catch (error) {
    await cleanup();
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(`the network namespaces were made but cannot reach each other: ${why}`);
  }
  return { names, ips, pids, cleanup };
}

// Accepts one connection on IP:0, prints the port, answers "ok" and exits.
const LISTENER = `const s = require('net').createServer((c) => { c.end('ok'); s.close(); });
s.listen(0, process.argv[1], () => console.log(s.address().port));
setTimeout(() => process.exit(2), 10000).unref();`;

// Connects to IP PORT and exits 0 when it reads "ok".
const CONNECTOR = `const c = require('net').connect(Number(process.argv[2]), process.argv[1]);
let d = ''; c.setEncoding('utf8'); c.on('data', (x) => (d += x));
c.on('end', () => process.exit(d === 'ok' ? 0 : 1));
c.on('error', (e) => { console.error(e.message); process.exit(1); });
setTimeout(() => { console.error('timed out connecting'); process.exit(1); }, 5000).unref();`;

/** A TCP connection from the second namespace to a listener in the first. */
async function checkTcp(names: readonly [string, string], ips: readonly [string, string]): Promise<void> {
  const listener = spawn('ip', ['netns', 'exec', names[0], process.execPath, '-e', LISTENER, ips[0]], { stdio: ['ignore', 'pipe', 'pipe'] });
  let listenerErr = '';
  listener.stderr.setEncoding('utf8').on('data', (chunk: string) => (listenerErr += chunk));
  try {
    const port = await new Promise<string>((resolve, reject) => {
      createInterface({ input: listener.stdout }).once('line', resolve);
      listener.once('error', reject);
      listener.once('exit', (code) => {
        reject(new Error(`the listener in ${names[0]} exited (${String(code)}) before listening: ${listenerErr.trim()}`));
      });
    });
    await new Promise<void>((resolve, reject) => {
      execFile('ip', ['netns', 'exec', names[1], process.execPath, '-e', CONNECTOR, ips[0], port], { timeout: IP_TIMEOUT_MS, encoding: 'utf8' }, (error, _stdout, stderr) => {
        if (error === null) resolve();
        else reject(new Error(`${names[1]} could not connect to ${ips[0]}:${port}: ${stderr.trim() || error.message}`));
      });
    });
  } finally {
    if (listener.exitCode === null) listener.kill();
  }
}
