/**
 * A gated `read_file` of a 1 KiB file between two real daemons, against a bare grpc-js
 * mutual-TLS echo of the same payload (bench/echo-server.ts, its own process), in one run.
 *
 * Paths measured, each at concurrency 1 and 64:
 * - `grpc_mtls_echo`: the baseline, no gate, no audit, no file read.
 * - `grpc_mtls_gated`: beta's identity and the Mesh client calling alpha's daemon directly;
 *   alpha authenticates, gates, audits (two lines) and reads the file. The goals are about this hop.
 * - `sdk_via_daemon`: the SDK on beta (createClient), beta's daemon over its unix socket, then
 *   the same hop to alpha. A secondary figure: it adds a local HTTP hop and a third process.
 *
 * Goals (per concurrency): gated throughput ≥ 0.8× echo, gated p50 ≤ 1.25× echo; after the
 * 10 000 gated calls at concurrency 64, every call has its decision and outcome line in alpha's
 * audit log, and alpha's resident memory is under 150 MB.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { Client, credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { createClient } from '../src/client/local-client.js';
import { loadHostIdentity } from '../src/identity/host-cert.js';
import { tlsDir } from '../src/identity/workspace-ca.js';
import { channelArgs } from '../src/transport/grpc-channel.js';
import { createMeshClient, DEFAULT_CALL_TIMEOUT_MS } from '../src/transport/grpc-client.js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../src/transport/grpc-server.js';
import { meshWire } from '../src/transport/mesh-proto.js';
import { percentile } from './stats.js';

/** One figure of this benchmark, printed as one JSON line. */
export interface MeshBenchResult {
  readonly bench: 'mesh';
  readonly name: string;
  readonly [key: string]: number | string | boolean;
}

const PAYLOAD_BYTES = 1024;
const GOAL_THROUGHPUT_RATIO = 0.8;
const GOAL_P50_RATIO = 1.25;
const GOAL_RSS_MB = 150;
/** The Mesh client's keepalive (src/transport/grpc-client.ts), so the echo channel is configured alike. */
const CLIENT_KEEPALIVE = { timeMs: 10_000, timeoutMs: 5_000 };

const BIN = fileURLToPath(new URL('../../bin/run.js', import.meta.url));
const ECHO_SERVER = fileURLToPath(new URL('./echo-server.js', import.meta.url));

/** Calls and warm-up calls per concurrency. */
const RUNS = [
  { concurrency: 1, calls: 2_000, warmup: 300 },
  { concurrency: 64, calls: 10_000, warmup: 1_000 },
] as const;

type PathName = 'grpc_mtls_echo' | 'grpc_mtls_gated' | 'sdk_via_daemon';

interface Host {
  readonly name: string;
  readonly ip: string;
  readonly home: string;
  address: string;
}

interface Measured {
  readonly samples: Float64Array;
  readonly seconds: number;
  readonly errors: number;
}

/** Runs the mesh benchmark; resolves with its figures, always stopping what it started. */
export async function benchMesh(): Promise<MeshBenchResult[]> {
  const homes = mkdtempSync(join(tmpdir(), 'cmdop-bench-homes-'));
  // Outside every CMDOP_HOME: the floor protects those.
  const data = realpathSync(mkdtempSync(join(tmpdir(), 'cmdop-bench-data-')));
  const alpha: Host = { name: 'alpha', ip: '127.0.0.2', home: join(homes, 'alpha'), address: '127.0.0.2:0' };
  const beta: Host = { name: 'beta', ip: '127.0.0.3', home: join(homes, 'beta'), address: '127.0.0.3:0' };
  let echo: ChildProcess | undefined;
  const started: Host[] = [];
  // Ctrl-C skips `finally`; stop the daemons and the echo server anyway.
  const onSignal = (signal: NodeJS.Signals): void => {
    echo?.kill('SIGTERM');
    for (const host of started) killDaemon(host);
    rmSync(homes, { recursive: true, force: true });
    rmSync(data, { recursive: true, force: true });
    process.kill(process.pid, signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const files = new Map<string, string>();
    const fileFor = (tag: string): string => {
      let file = files.get(tag);
      if (file === undefined) {
        file = join(data, `${tag}.txt`);
        writeFileSync(file, 'x'.repeat(PAYLOAD_BYTES));
        files.set(tag, file);
      }
      return file;
    };

    await setUpWorkspace(alpha, beta, data, started);
    const betaIdentity = await loadHostIdentity(tlsDir(beta.home));
    if (betaIdentity === undefined) throw new Error('benchmark setup: beta has no identity after joining');
    const alphaTls = tlsDir(alpha.home);
    const idleRssMb = rssMb(daemonPid(alpha), 'VmRSS');

    // The echo server presents alpha's certificate and requires one of the workspace CA, as alpha does.
    const spawned = await startEcho(alpha.ip, join(alphaTls, 'host.key'), join(alphaTls, 'host.crt'), join(alphaTls, 'ca.crt'));
    echo = spawned.child;

    const echoClient = createEchoClient(spawned.address, betaIdentity);
    const mesh = createMeshClient({ address: alpha.address, tls: betaIdentity, expectedHostName: 'alpha' });
    const sdk = createClient({ home: beta.home });
    const callers: Record<PathName, (file: string) => Promise<number>> = {
      grpc_mtls_echo: (file) => echoClient.readFile(file),
      grpc_mtls_gated: async (file) => (await mesh.readFile({ path: file })).bytes,
      sdk_via_daemon: async (file) => (await sdk.readFile('alpha', file)).content.length,
    };

    const results: MeshBenchResult[] = [];
    const p50 = new Map<string, number>();
    const throughput = new Map<string, number>();
    try {
      for (const run of RUNS) {
        for (const path of ['grpc_mtls_echo', 'grpc_mtls_gated', 'sdk_via_daemon'] as const) {
          const tag = `${path}-c${run.concurrency}`;
          const call = callers[path];
          const file = fileFor(tag);
          const warmFile = fileFor(`${tag}-warmup`);
          const first = await call(warmFile);
          if (first !== PAYLOAD_BYTES) throw new Error(`benchmark setup: ${path} returned ${first} bytes, not ${PAYLOAD_BYTES}`);
          await drive(run.warmup, run.concurrency, () => call(warmFile));
          const measured = await drive(run.calls, run.concurrency, () => call(file));
          const figure = summarize(path, run.concurrency, run.calls, measured);
          results.push(figure);
          p50.set(tag, figure.p50_us as number);
          throughput.set(tag, figure.throughput_per_s as number);

          if (path === 'grpc_mtls_gated' && run.concurrency === 64) {
            results.push(auditAndMemory(alpha, file, run.calls - measured.errors, run.calls, idleRssMb));
          }
        }
        for (const path of ['grpc_mtls_gated', 'sdk_via_daemon'] as const) {
          const base = `grpc_mtls_echo-c${run.concurrency}`;
          const tag = `${path}-c${run.concurrency}`;
          const throughputRatio = round((throughput.get(tag) ?? NaN) / (throughput.get(base) ?? NaN));
          const p50Ratio = round((p50.get(tag) ?? NaN) / (p50.get(base) ?? NaN));
          results.push({
            bench: 'mesh',
            name: 'ratio',
            path,
            baseline: 'grpc_mtls_echo',
            concurrency: run.concurrency,
            throughput_ratio: throughputRatio,
            p50_ratio: p50Ratio,
            goal: `throughput_ratio>=${GOAL_THROUGHPUT_RATIO} p50_ratio<=${GOAL_P50_RATIO}`,
            met: throughputRatio >= GOAL_THROUGHPUT_RATIO && p50Ratio <= GOAL_P50_RATIO,
            ...(path === 'sdk_via_daemon' ? { note: 'secondary: adds the local HTTP hop on beta and a third process' } : {}),
          });
        }
      }
      results.push({ bench: 'mesh', name: 'memory_end', host: 'alpha', rss_mb: rssMb(daemonPid(alpha), 'VmRSS'), peak_rss_mb: rssMb(daemonPid(alpha), 'VmHWM') });
    } finally {
      echoClient.close();
      mesh.close();
    }
    return results;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    echo?.kill('SIGTERM');
    await Promise.all(started.map((host) => cmdop(host, ['agent', 'stop']).catch(() => undefined)));
    rmSync(homes, { recursive: true, force: true });
    rmSync(data, { recursive: true, force: true });
  }
}

/** alpha inits the workspace and allows reads of `data`; beta joins with a fresh token; both start. */
async function setUpWorkspace(alpha: Host, beta: Host, data: string, started: Host[]): Promise<void> {
  await mustRun(alpha, ['config', 'set', 'agent.listen', alpha.address]);
  await mustRun(alpha, ['workspace', 'init', '--name', 'bench', '--host-name', alpha.name]);
  await mustRun(alpha, ['permissions', 'allow', `read_file(${data}/**)`]);
  await startDaemon(alpha, started);
  await mustRun(beta, ['config', 'set', 'agent.listen', beta.address]);
  const invite = JSON.parse(await mustRun(alpha, ['workspace', 'invite', '--ttl', '10m', '--json'])) as { token: string };
  await mustRun(beta, ['join', invite.token, '--server', alpha.address, '--name', beta.name]);
  await startDaemon(beta, started);
}

async function startDaemon(host: Host, started: Host[]): Promise<void> {
  started.push(host);
  const out = await mustRun(host, ['agent', 'start', '--json']);
  host.address = (JSON.parse(out) as { status: { listen_address: string } }).status.listen_address;
}

/** Runs the built `cmdop` with the host's CMDOP_HOME. */
function cmdop(host: Host, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, CMDOP_HOME: host.home, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

async function mustRun(host: Host, args: readonly string[]): Promise<string> {
  const r = await cmdop(host, args);
  if (r.code !== 0) throw new Error(`benchmark setup: cmdop ${args.join(' ')} on ${host.name} failed (exit ${String(r.code)}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

function daemonPid(host: Host): number {
  return Number(readFileSync(join(host.home, 'run', 'agent.pid'), 'utf8').trim());
}

/** For the signal path only: the daemon stops on SIGTERM as `agent stop` would have it. */
function killDaemon(host: Host): void {
  try {
    process.kill(daemonPid(host), 'SIGTERM');
  } catch {
    // Not started, or gone already.
  }
}

/** Starts bench/echo-server.js and resolves with its address once it listens. */
function startEcho(ip: string, keyFile: string, certFile: string, caFile: string): Promise<{ child: ChildProcess; address: string }> {
  const child = spawn(process.execPath, [ECHO_SERVER, ip, keyFile, certFile, caFile, String(PAYLOAD_BYTES)], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGTERM');
      reject(new Error('benchmark setup: the echo server did not start within 10 s'));
    }, 10_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const line = out.split('\n')[0];
      if (line === undefined || !out.includes('\n')) return;
      clearTimeout(timer);
      resolve({ child, address: (JSON.parse(line) as { address: string }).address });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`benchmark setup: the echo server exited with ${String(code)}`));
    });
  });
}

/**
 * The baseline client: a bare grpc-js client with the Mesh client's channel options and TLS
 * (beta's key and certificate, the workspace CA), a deadline per call as the Mesh client sets,
 * and the same proto codec; nothing else.
 */
function createEchoClient(address: string, tls: { keyPem: string; certPem: string; caCertPem: string }): { readFile(path: string): Promise<number>; close(): void } {
  const wire = meshWire().methods.ReadFile;
  const channelCredentials = credentials.createSsl(Buffer.from(tls.caCertPem), Buffer.from(tls.keyPem), Buffer.from(tls.certPem), {
    // The chain to the CA is still verified; host certificates name hosts, not the IP dialled.
    checkServerIdentity: () => undefined,
  });
  const client = new Client(address, channelCredentials, channelArgs({ maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, keepalive: CLIENT_KEEPALIVE, servername: 'alpha' }));
  return {
    readFile: (path) =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest<object, unknown>(
          wire.path,
          (value) => wire.serializeRequest(value),
          (bytes) => wire.deserializeResponse(bytes),
          { path, offset: 0 },
          new Metadata(),
          { deadline: new Date(Date.now() + DEFAULT_CALL_TIMEOUT_MS) },
          (error: ServiceError | null, response?: unknown) => {
            if (error !== null) reject(error);
            else resolve((response as { content: Buffer }).content.length);
          },
        );
      }),
    close: () => {
      client.close();
    },
  };
}

/** Makes `calls` calls with at most `concurrency` in flight; per-call latency in microseconds. */
async function drive(calls: number, concurrency: number, call: () => Promise<unknown>): Promise<Measured> {
  const samples = new Float64Array(calls);
  let next = 0;
  let errors = 0;
  let firstError: unknown;
  const worker = async (): Promise<void> => {
    while (next < calls) {
      const i = next++;
      const start = process.hrtime.bigint();
      try {
        await call();
      } catch (error) {
        errors++;
        firstError ??= error;
      }
      samples[i] = Number(process.hrtime.bigint() - start) / 1000;
    }
  };
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, worker));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (firstError !== undefined) process.stderr.write(`mesh bench: ${errors} of ${calls} calls failed; the first: ${firstError instanceof Error ? firstError.message : inspect(firstError)}\n`);
  return { samples, seconds, errors };
}

function summarize(path: PathName, concurrency: number, calls: number, measured: Measured): MeshBenchResult {
  const samples = Array.from(measured.samples);
  return {
    bench: 'mesh',
    name: 'read_file_1KiB',
    path,
    concurrency,
    calls,
    errors: measured.errors,
    seconds: round(measured.seconds),
    throughput_per_s: Math.round(calls / measured.seconds),
    p50_us: Math.round(percentile(samples, 0.5)),
    p99_us: Math.round(percentile(samples, 0.99)),
  };
}

/** Counts alpha's audit lines for `file` (every rotated file included) and reads alpha's memory. */
function auditAndMemory(alpha: Host, file: string, callsOk: number, callsMade: number, idleRssMb: number): MeshBenchResult {
  const logs = join(alpha.home, 'logs');
  let decisionLines = 0;
  let outcomeLines = 0;
  for (const name of readdirSync(logs).filter((n) => n.startsWith('audit.log'))) {
    for (const line of readFileSync(join(logs, name), 'utf8').split('\n')) {
      if (line === '' || !line.includes(file)) continue;
      const record = JSON.parse(line) as { event?: string; tool?: string; target?: string };
      if (record.tool !== 'read_file' || record.target !== file) continue;
      if (record.event === 'decision') decisionLines++;
      else if (record.event === 'outcome') outcomeLines++;
    }
  }
  const pid = daemonPid(alpha);
  const rss = rssMb(pid, 'VmRSS');
  const lost = callsMade * 2 - decisionLines - outcomeLines;
  return {
    bench: 'mesh',
    name: 'audit_and_memory',
    path: 'grpc_mtls_gated',
    concurrency: 64,
    calls_made: callsMade,
    calls_ok: callsOk,
    decision_lines: decisionLines,
    outcome_lines: outcomeLines,
    lost_lines: lost,
    receiver_rss_mb: rss,
    receiver_idle_rss_mb: idleRssMb,
    receiver_peak_rss_mb: rssMb(pid, 'VmHWM'),
    goal: `lost_lines=0 receiver_rss_mb<${GOAL_RSS_MB}`,
    met: lost === 0 && rss < GOAL_RSS_MB,
  };
}

/** A field of /proc/PID/status in MB (Linux only; NaN elsewhere). */
function rssMb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] === undefined ? NaN : round(Number(match[1]) / 1024);
  } catch {
    return NaN;
  }
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
