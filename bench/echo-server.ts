/**
 * The baseline of the mesh benchmark, run as its own process: a bare grpc-js server with
 * mutual TLS that answers `cmdop.v1.Mesh/ReadFile` with a fixed reply carrying the payload,
 * with no gate, audit, file system or validation in between. It uses the same proto codec and
 * server options as the daemon, so the bytes on the wire match the gated path's.
 *
 * Usage: node echo-server.js HOST KEY_FILE CERT_FILE CA_FILE PAYLOAD_BYTES
 * Prints `{"address":"HOST:PORT"}` once it listens; exits on SIGTERM or when stdin closes
 * (the benchmark died), so it never outlives its parent.
 */
import { readFileSync } from 'node:fs';
import { Server, ServerCredentials, type ServerUnaryCall, type ServiceDefinition, type sendUnaryData } from '@grpc/grpc-js';
import { DEFAULT_MAX_MESSAGE_BYTES } from '../src/transport/grpc-server.js';
import { meshWire } from '../src/transport/mesh-proto.js';

/** The daemon's server keepalive (src/transport/grpc-server.ts). */
const SERVER_KEEPALIVE = { timeMs: 30_000, timeoutMs: 10_000 };

const [host, keyFile, certFile, caFile, payloadArg] = process.argv.slice(2);
if (host === undefined || keyFile === undefined || certFile === undefined || caFile === undefined || payloadArg === undefined) {
  process.stderr.write('usage: echo-server HOST KEY_FILE CERT_FILE CA_FILE PAYLOAD_BYTES\n');
  process.exit(2);
}
const payloadBytes = Number(payloadArg);
const content = Buffer.alloc(payloadBytes, 'x');
// Shaped like the daemon's reply to the same read, so both paths move the same bytes.
const reply = {
  decision: { decision: 'allow', source: 'rule', rule: 'read_file(/tmp/cmdop-bench-data-XXXXXX/**)', rule_id: 'f'.repeat(64), reason: 'matched allow rule read_file(/tmp/cmdop-bench-data-XXXXXX/**)', scope: 'global' },
  path: '/tmp/cmdop-bench-data-XXXXXX/grpc-c64.txt',
  size: payloadBytes,
  offset: 0,
  bytes: payloadBytes,
  encoding: 'utf8',
  content,
  truncated: false,
  eof: true,
};

const wire = meshWire().methods.ReadFile;
const service: ServiceDefinition = {
  ReadFile: {
    path: wire.path,
    requestStream: false,
    responseStream: false,
    requestSerialize: (value: object) => wire.serializeRequest(value),
    requestDeserialize: (bytes: Buffer) => wire.deserializeRequest(bytes),
    responseSerialize: (value: object) => wire.serializeResponse(value),
    responseDeserialize: (bytes: Buffer) => wire.deserializeResponse(bytes),
    originalName: 'ReadFile',
  },
};

const server = new Server({
  'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES,
  'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE_BYTES,
  'grpc.keepalive_time_ms': SERVER_KEEPALIVE.timeMs,
  'grpc.keepalive_timeout_ms': SERVER_KEEPALIVE.timeoutMs,
});
server.addService(service, {
  ReadFile: (_call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => {
    callback(null, reply);
  },
});
// `true`: a client certificate signed by the CA is required, as mutual TLS.
const credentials = ServerCredentials.createSsl(readFileSync(caFile), [{ private_key: readFileSync(keyFile), cert_chain: readFileSync(certFile) }], true);
server.bindAsync(`${host}:0`, credentials, (error, port) => {
  if (error !== null) {
    process.stderr.write(`echo-server: cannot listen on ${host}:0: ${error.message}\n`);
    process.exit(1);
  }
  process.stdout.write(`${JSON.stringify({ address: `${host}:${port}` })}\n`);
});

const stop = (): void => {
  server.forceShutdown();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.stdin.on('end', stop).resume();
