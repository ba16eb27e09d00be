/**
 * A TCP proxy in a child process, standing in for a peer daemon's process: SIGKILL it and the
 * kernel closes its sockets (a crashed peer); SIGSTOP it and the connection stays open but
 * silent (a peer or network that froze).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';

const PROXY_SOURCE = `
const net = require('node:net');
const [host, port] = [process.argv[1], Number(process.argv[2])];
const server = net.createServer((inbound) => {
  const outbound = net.connect(port, host);
  inbound.pipe(outbound).pipe(inbound);
  inbound.on('error', () => outbound.destroy());
  outbound.on('error', () => inbound.destroy());
});
server.listen(0, '127.0.0.1', () => process.stdout.write(String(server.address().port) + '\\n'));
`;

/** A running proxy child process. */
export interface TcpProxy {
  readonly child: ChildProcess;
  /** `127.0.0.1:<port>` of the proxy. */
  readonly address: string;
  /** Kills the child (SIGKILL, or SIGCONT first if stopped) and waits for it to exit. */
  stop(): Promise<void>;
}

/** Starts a proxy to `host:port` and resolves once it listens. */
export async function startTcpProxy(host: string, port: number): Promise<TcpProxy> {
  const child = spawn(process.execPath, ['-e', PROXY_SOURCE, host, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [chunk] = (await once(child.stdout, 'data')) as [Buffer];
  const proxyPort = Number(chunk.toString('utf8').trim());
  return {
    child,
    address: `127.0.0.1:${proxyPort}`,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    },
  };
}
