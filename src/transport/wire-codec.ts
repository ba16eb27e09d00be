/**
 * The trust boundary of the wire: every message that arrives (a request at the server, a
 * response at the client) is checked with a zod schema and turned into a frozen, typed object
 * before anything uses it; every message that leaves is built from typed values here.
 * A message that fails its check is a CmdopError, never a crash.
 */
import { z } from 'zod';
import { CmdopError, type ErrorCode } from '../errors.js';
import type { GateDecision } from '../gate/types.js';
import { isValidHostName } from '../identity/host-name.js';
import { validateServerAddress } from '../identity/join-token.js';
import { WORKSPACE_ID_PATTERN } from '../identity/x509.js';
import type { DirEntry } from '../tools/list-dir.js';
import type {
  AnnounceReply,
  AnnounceRequest,
  ExecuteCommandReply,
  ExecuteCommandRequest,
  JoinReply,
  JoinRequest,
  ListDirReply,
  ListDirRequest,
  PingReply,
  ReadFileReply,
  ReadFileRequest,
  RenewReply,
  RenewRequest,
  RosterEntry,
  RosterReply,
  WriteFileReply,
  WriteFileRequest,
} from './mesh-handler.js';
import { MESH_METHODS, type MeshMethod, type MessageName, type WireMessage, type WireRequest, type WireResponse } from './wire-types.js';

/** Request and reply types of each RPC, as the handler and the client's caller see them. */
export interface MeshApi {
  Ping: { request: Readonly<Record<string, never>>; reply: PingReply };
  ExecuteCommand: { request: ExecuteCommandRequest; reply: ExecuteCommandReply };
  ReadFile: { request: ReadFileRequest; reply: ReadFileReply };
  WriteFile: { request: WriteFileRequest; reply: WriteFileReply };
  ListDir: { request: ListDirRequest; reply: ListDirReply };
  Join: { request: JoinRequest; reply: JoinReply };
  Renew: { request: RenewRequest; reply: RenewReply };
  Announce: { request: AnnounceRequest; reply: AnnounceReply };
  Roster: { request: Readonly<Record<string, never>>; reply: RosterReply };
}

/** Converts one RPC's messages between their API and wire forms, checking what comes in. */
export interface MethodCodec<M extends MeshMethod> {
  /** Client: API request → wire; CmdopError('invalid_input') if the caller's request cannot be sent. */
  encodeRequest(request: MeshApi[M]['request']): WireRequest<M>;
  /** Server: received message → frozen API request; CmdopError('invalid_input') if malformed. */
  decodeRequest(message: unknown): MeshApi[M]['request'];
  /** Server: handler reply → wire; CmdopError('internal') if the handler's reply cannot be sent. */
  encodeResponse(reply: MeshApi[M]['reply']): WireResponse<M>;
  /** Client: received message → frozen API reply; CmdopError('internal') if malformed. */
  decodeResponse(message: unknown): MeshApi[M]['reply'];
}

const MAX_UINT32 = 0xffff_ffff;
const uint64 = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const uint32 = z.number().int().min(0).max(MAX_UINT32);
const int32 = z.number().int().min(-(2 ** 31)).max(2 ** 31 - 1);
const bytes = z.instanceof(Buffer);
const noNul = (what: string) => z.string().refine((value) => !value.includes('\0'), `${what} contains a NUL character`);
const nonEmpty = (what: string) => noNul(what).refine((value) => value.length > 0, `${what} is empty`);

/** Largest join token accepted: real ones are about 250 bytes; the cap keeps junk cheap to refuse. */
const MAX_TOKEN_BYTES = 4 * 1024;
/** Largest CSR or certificate accepted: a P-256 one is under 1 KiB. */
const MAX_PEM_BYTES = 16 * 1024;
/** Longest workspace name (the CA's rule). */
const MAX_WORKSPACE_NAME = 64;

const maxBytes = (what: string, max: number) =>
  z.string().refine((value) => Buffer.byteLength(value, 'utf8') <= max, `${what} is larger than ${max} bytes`);

/**
 * A single PEM block with `label`, at most {@link MAX_PEM_BYTES}: a cheap shape check at the
 * edge; the certificate code parses and verifies the content itself.
 */
function pemBlock(label: 'CERTIFICATE' | 'CERTIFICATE REQUEST', what: string) {
  const shape = new RegExp(`^\\s*-----BEGIN ${label}-----\\r?\\n(?:[A-Za-z0-9+/=]+\\r?\\n)+-----END ${label}-----\\s*$`);
  return z.string().superRefine((value, ctx) => {
    // Size first, so the pattern never runs over a huge string.
    if (Buffer.byteLength(value, 'utf8') > MAX_PEM_BYTES) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${what} is larger than ${MAX_PEM_BYTES} bytes` });
    } else if (!shape.test(value)) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `${what} is not one PEM block (-----BEGIN ${label}-----)` });
    }
  });
}

/** True when `value` is exactly a `HOST:PORT` address, port 1 to 65535, IPv6 in brackets. */
function isHostPort(value: string): boolean {
  try {
    return validateServerAddress(value) === value;
  } catch {
    return false;
  }
}

const hostName = z.string().refine(isValidHostName, 'not a valid host name (one DNS label: letters, digits, inner hyphens, 1 to 63 characters)');
const hostPort = z.string().refine(isHostPort, 'not a HOST:PORT address with a port from 1 to 65535');
const optionalHostPort = z.string().refine((value) => value === '' || isHostPort(value), 'neither empty nor a HOST:PORT address with a port from 1 to 65535');
/** Most revoked host names a roster reply may carry. */
const MAX_REVOKED = 10_000;
const revokedNames = z.array(hostName).max(MAX_REVOKED);
const optionalTime = z.union([z.literal(''), z.string().datetime({ offset: true })]);

const DECISIONS = ['allow', 'deny', 'ask'] as const;
const SOURCES = ['floor', 'rule', 'mode', 'self', 'local'] as const;
const SCOPES = ['session', 'global'] as const;
const ENCODINGS = ['utf8', 'base64'] as const;
const ENTRY_TYPES = ['file', 'dir', 'symlink', 'other'] as const;

type Schema<M extends MessageName> = z.ZodType<WireMessage<M>, z.ZodTypeDef, unknown>;

const decisionSchema: Schema<'Decision'> = z.object({
  decision: z.enum(DECISIONS),
  source: z.enum(SOURCES),
  rule: z.string(),
  rule_id: z.string(),
  reason: z.string(),
  scope: z.union([z.literal(''), z.enum(SCOPES)]),
});

const dirEntrySchema: Schema<'DirEntry'> = z.object({ name: z.string(), type: z.enum(ENTRY_TYPES), size: uint64.optional() });

/** Most API keys an announce reply may carry. */
const MAX_API_KEYS = 10_000;
const apiKeyEntrySchema: Schema<'ApiKeyEntry'> = z.object({
  id: z.string().regex(/^[0-9a-f]{32}$/, 'not an API key id (32 lowercase hex characters)'),
  name: z.string().regex(/^[a-z0-9._-]{1,64}$/, 'not an API key name'),
  secret_hash: z.string().regex(/^[0-9a-f]{64}$/, 'not a sha256 hex digest'),
  expires_at: optionalTime,
  revoked_at: optionalTime,
});
const oidcConfigSchema: Schema<'OidcConfig'> = z.object({
  issuer: z.string().url().max(2048),
  client_id: nonEmpty('client_id').pipe(z.string().max(256)),
  audience: z.string().max(512),
});

const rosterEntrySchema: Schema<'RosterEntry'> = z.object({ name: hostName, address: optionalHostPort, last_seen: optionalTime, online: z.boolean() });

const schemas: { readonly [M in MessageName]: Schema<M> } = {
  Decision: decisionSchema,
  PingRequest: z.object({}),
  PingResponse: z.object({ host_name: z.string(), version: z.string() }),
  ExecuteCommandRequest: z.object({
    command: nonEmpty('command'),
    cwd: noNul('cwd'),
    timeout_ms: uint32.optional(),
  }),
  ExecuteCommandResponse: z.object({
    decision: decisionSchema,
    exit_code: int32.optional(),
    signal: z.string(),
    stdout: z.string(),
    stderr: z.string(),
    stdout_truncated: z.boolean(),
    stderr_truncated: z.boolean(),
    timed_out: z.boolean(),
    aborted: z.boolean(),
    duration_ms: uint64,
  }),
  ReadFileRequest: z.object({ path: nonEmpty('path'), offset: uint64, length: uint64.optional() }),
  ReadFileResponse: z.object({
    decision: decisionSchema,
    path: z.string(),
    size: uint64,
    offset: uint64,
    bytes: uint64,
    encoding: z.enum(ENCODINGS),
    content: bytes,
    truncated: z.boolean(),
    eof: z.boolean(),
  }),
  WriteFileRequest: z.object({ path: nonEmpty('path'), content: bytes, mode: uint32.max(0o7777).optional() }),
  WriteFileResponse: z.object({ decision: decisionSchema, path: z.string(), bytes: uint64, created: z.boolean() }),
  ListDirRequest: z.object({ path: nonEmpty('path') }),
  DirEntry: dirEntrySchema,
  ListDirResponse: z.object({
    decision: decisionSchema,
    path: z.string(),
    entries: z.array(dirEntrySchema),
    truncated: z.boolean(),
  }),
  JoinRequest: z.object({
    token: nonEmpty('token').pipe(maxBytes('token', MAX_TOKEN_BYTES)),
    host_name: hostName,
    csr_pem: pemBlock('CERTIFICATE REQUEST', 'csr_pem'),
  }),
  JoinResponse: z.object({
    cert_pem: pemBlock('CERTIFICATE', 'cert_pem'),
    ca_cert_pem: pemBlock('CERTIFICATE', 'ca_cert_pem'),
    workspace_id: z.string().regex(WORKSPACE_ID_PATTERN, 'not a workspace id (32 lowercase hex characters)'),
    workspace_name: nonEmpty('workspace_name').pipe(z.string().max(MAX_WORKSPACE_NAME)),
    ca_host_name: hostName,
    ca_address: hostPort,
  }),
  RenewRequest: z.object({ csr_pem: pemBlock('CERTIFICATE REQUEST', 'csr_pem') }),
  RenewResponse: z.object({ cert_pem: pemBlock('CERTIFICATE', 'cert_pem') }),
  AnnounceRequest: z.object({ address: hostPort }),
  AnnounceResponse: z.object({
    peers: z.array(rosterEntrySchema),
    revoked: revokedNames,
    api_keys: z.array(apiKeyEntrySchema).max(MAX_API_KEYS),
    oidc: oidcConfigSchema.nullable(),
  }),
  ApiKeyEntry: apiKeyEntrySchema,
  OidcConfig: oidcConfigSchema,
  RosterRequest: z.object({}),
  RosterResponse: z.object({ peers: z.array(rosterEntrySchema), revoked: revokedNames }),
  RosterEntry: rosterEntrySchema,
};

/** Checks `message` against the schema of message type `name`; throws CmdopError(`code`) naming what is wrong. */
export function parseWire<M extends MessageName>(name: M, message: unknown, code: ErrorCode, context: string): WireMessage<M> {
  const result = schemas[name].safeParse(message);
  if (result.success) return result.data;
  const problems = result.error.issues
    .slice(0, 3)
    .map((issue) => (issue.path.length > 0 ? `${issue.path.join('.')}: ${issue.message}` : issue.message))
    .join('; ');
  throw new CmdopError(code, `${context} is malformed (${name}): ${problems}`, {
    details: { message: name },
  });
}

/** Narrows a string the schema has already checked to its union; CmdopError('internal') otherwise. */
function oneOf<T extends string>(values: readonly T[], value: string, what: string): T {
  const found = values.find((candidate) => candidate === value);
  if (found === undefined) throw new CmdopError('internal', `the peer sent an unknown ${what}: ${JSON.stringify(value.slice(0, 40))}`);
  return found;
}

function toWireDecision(decision: GateDecision): WireMessage<'Decision'> {
  return {
    decision: decision.decision,
    source: decision.source,
    rule: decision.rule ?? '',
    rule_id: decision.rule_id ?? '',
    reason: decision.reason,
    scope: decision.scope ?? '',
  };
}

function fromWireDecision(wire: WireMessage<'Decision'> | null): GateDecision {
  if (wire === null) throw new CmdopError('internal', 'the peer sent a reply without the decision of its gate');
  return Object.freeze({
    decision: oneOf(DECISIONS, wire.decision, 'decision'),
    source: oneOf(SOURCES, wire.source, 'decision source'),
    ...(wire.rule === '' ? {} : { rule: wire.rule }),
    ...(wire.rule_id === '' ? {} : { rule_id: wire.rule_id }),
    ...(wire.scope === '' ? {} : { scope: oneOf(SCOPES, wire.scope, 'rule scope') }),
    reason: wire.reason,
  });
}

function fromWireEntry(entry: WireMessage<'DirEntry'>): DirEntry {
  return Object.freeze({
    name: entry.name,
    type: oneOf(ENTRY_TYPES, entry.type, 'directory entry type'),
    ...(entry.size === undefined ? {} : { size: entry.size }),
  });
}

function toWireRosterEntry(entry: RosterEntry): WireMessage<'RosterEntry'> {
  return { name: entry.name, address: entry.address ?? '', last_seen: entry.last_seen ?? '', online: entry.online };
}

function fromWireRosterEntry(entry: WireMessage<'RosterEntry'>): RosterEntry {
  return Object.freeze({
    name: entry.name.toLowerCase(),
    ...(entry.address === '' ? {} : { address: entry.address }),
    ...(entry.last_seen === '' ? {} : { last_seen: entry.last_seen }),
    online: entry.online,
  });
}

function toWireRoster(reply: RosterReply): WireMessage<'RosterResponse'> {
  return { peers: reply.peers.map(toWireRosterEntry), revoked: [...reply.revoked] };
}

function fromWireRoster(wire: WireMessage<'RosterResponse'>): RosterReply {
  return Object.freeze({
    peers: Object.freeze(wire.peers.map(fromWireRosterEntry)),
    // Host names compare case-insensitively and are certified in lower case.
    revoked: Object.freeze([...new Set(wire.revoked.map((name) => name.toLowerCase()))]),
  });
}

function toWireAnnounce(reply: AnnounceReply): WireMessage<'AnnounceResponse'> {
  const { api_keys: keys, oidc } = reply.credentials;
  return {
    ...toWireRoster(reply),
    api_keys: keys.map((key) => ({ id: key.id, name: key.name, secret_hash: key.secret_hash, expires_at: key.expires_at ?? '', revoked_at: key.revoked_at ?? '' })),
    oidc: oidc === null ? null : { issuer: oidc.issuer, client_id: oidc.client_id, audience: oidc.audience ?? '' },
  };
}

function fromWireAnnounce(wire: WireMessage<'AnnounceResponse'>): AnnounceReply {
  const { oidc } = wire;
  return Object.freeze({
    ...fromWireRoster(wire),
    credentials: Object.freeze({
      api_keys: Object.freeze(
        wire.api_keys.map((key) =>
          Object.freeze({ id: key.id, name: key.name, secret_hash: key.secret_hash, expires_at: key.expires_at === '' ? null : key.expires_at, revoked_at: key.revoked_at === '' ? null : key.revoked_at }),
        ),
      ),
      oidc: oidc === null ? null : Object.freeze({ issuer: oidc.issuer, client_id: oidc.client_id, audience: oidc.audience === '' ? null : oidc.audience }),
    }),
  });
}

/** The four conversions of one method, each between already typed values. */
interface Conversions<M extends MeshMethod> {
  toWireRequest(request: MeshApi[M]['request']): WireRequest<M>;
  fromWireRequest(wire: WireRequest<M>): MeshApi[M]['request'];
  toWireResponse(reply: MeshApi[M]['reply']): WireResponse<M>;
  fromWireResponse(wire: WireResponse<M>): MeshApi[M]['reply'];
}

/** Builds the codec of one method: each conversion is checked against the schema of the message it produces or consumes. */
function codec<M extends MeshMethod>(method: M, parts: Conversions<M>): MethodCodec<M> {
  type Request = (typeof MESH_METHODS)[M]['request'];
  type Response = (typeof MESH_METHODS)[M]['response'];
  const request: Request = MESH_METHODS[method].request;
  const response: Response = MESH_METHODS[method].response;
  return {
    encodeRequest: (value) => parseWire<Request>(request, parts.toWireRequest(value), 'invalid_input', `the ${method} request`),
    decodeRequest: (message) => parts.fromWireRequest(parseWire<Request>(request, message, 'invalid_input', `the ${method} request`)),
    encodeResponse: (reply) => parseWire<Response>(response, parts.toWireResponse(reply), 'internal', `the ${method} reply made by this host`),
    decodeResponse: (message) => parts.fromWireResponse(parseWire<Response>(response, message, 'internal', `the ${method} reply from the peer`)),
  };
}

/** The codec of every RPC. */
export const CODECS: { readonly [M in MeshMethod]: MethodCodec<M> } = {
  Ping: codec('Ping', {
    toWireRequest: () => ({}),
    fromWireRequest: () => Object.freeze({}),
    toWireResponse: (reply) => ({ host_name: reply.host_name, version: reply.version }),
    fromWireResponse: (wire) => Object.freeze({ host_name: wire.host_name, version: wire.version }),
  }),
  ExecuteCommand: codec('ExecuteCommand', {
    toWireRequest: (request) => ({
      command: request.command,
      cwd: request.cwd ?? '',
      ...(request.timeout_ms === undefined ? {} : { timeout_ms: request.timeout_ms }),
    }),
    fromWireRequest: (wire) =>
      Object.freeze({
        command: wire.command,
        ...(wire.cwd === '' ? {} : { cwd: wire.cwd }),
        ...(wire.timeout_ms === undefined ? {} : { timeout_ms: wire.timeout_ms }),
      }),
    toWireResponse: (reply) => ({
      decision: toWireDecision(reply.decision),
      ...(reply.exit_code === null ? {} : { exit_code: reply.exit_code }),
      signal: reply.signal ?? '',
      stdout: reply.stdout,
      stderr: reply.stderr,
      stdout_truncated: reply.truncated.stdout,
      stderr_truncated: reply.truncated.stderr,
      timed_out: reply.timed_out,
      aborted: reply.aborted,
      duration_ms: reply.duration_ms,
    }),
    fromWireResponse: (wire) =>
      Object.freeze({
        decision: fromWireDecision(wire.decision),
        exit_code: wire.exit_code ?? null,
        signal: wire.signal === '' ? null : wire.signal,
        stdout: wire.stdout,
        stderr: wire.stderr,
        truncated: Object.freeze({ stdout: wire.stdout_truncated, stderr: wire.stderr_truncated }),
        timed_out: wire.timed_out,
        aborted: wire.aborted,
        duration_ms: wire.duration_ms,
      }),
  }),
  ReadFile: codec('ReadFile', {
    toWireRequest: (request) => ({
      path: request.path,
      offset: request.offset ?? 0,
      ...(request.length === undefined ? {} : { length: request.length }),
    }),
    fromWireRequest: (wire) =>
      Object.freeze({ path: wire.path, offset: wire.offset, ...(wire.length === undefined ? {} : { length: wire.length }) }),
    toWireResponse: (reply) => ({
      decision: toWireDecision(reply.decision),
      path: reply.path,
      size: reply.size,
      offset: reply.offset,
      bytes: reply.bytes,
      encoding: reply.encoding,
      // The bytes travel as bytes; `encoding` says how the caller gets them back as text.
      content: Buffer.from(reply.content, reply.encoding),
      truncated: reply.truncated,
      eof: reply.eof,
    }),
    fromWireResponse: (wire) => {
      const encoding = oneOf(ENCODINGS, wire.encoding, 'encoding');
      return Object.freeze({
        decision: fromWireDecision(wire.decision),
        path: wire.path,
        size: wire.size,
        offset: wire.offset,
        bytes: wire.bytes,
        encoding,
        content: wire.content.toString(encoding),
        truncated: wire.truncated,
        eof: wire.eof,
      });
    },
  }),
  WriteFile: codec('WriteFile', {
    toWireRequest: (request) => ({
      path: request.path,
      content: request.content,
      ...(request.mode === undefined ? {} : { mode: request.mode }),
    }),
    fromWireRequest: (wire) =>
      Object.freeze({ path: wire.path, content: wire.content, ...(wire.mode === undefined ? {} : { mode: wire.mode }) }),
    toWireResponse: (reply) => ({ decision: toWireDecision(reply.decision), path: reply.path, bytes: reply.bytes, created: reply.created }),
    fromWireResponse: (wire) =>
      Object.freeze({ decision: fromWireDecision(wire.decision), path: wire.path, bytes: wire.bytes, created: wire.created }),
  }),
  ListDir: codec('ListDir', {
    toWireRequest: (request) => ({ path: request.path }),
    fromWireRequest: (wire) => Object.freeze({ path: wire.path }),
    toWireResponse: (reply) => ({
      decision: toWireDecision(reply.decision),
      path: reply.path,
      entries: reply.entries.map((entry) => ({ name: entry.name, type: entry.type, ...(entry.size === undefined ? {} : { size: entry.size }) })),
      truncated: reply.truncated,
    }),
    fromWireResponse: (wire) =>
      Object.freeze({
        decision: fromWireDecision(wire.decision),
        path: wire.path,
        entries: Object.freeze(wire.entries.map(fromWireEntry)),
        truncated: wire.truncated,
      }),
  }),
  Join: codec('Join', {
    toWireRequest: (request) => ({ token: request.token, host_name: request.host_name, csr_pem: request.csr_pem }),
    // Host names compare case-insensitively and are certified in lower case.
    fromWireRequest: (wire) => Object.freeze({ token: wire.token, host_name: wire.host_name.toLowerCase(), csr_pem: wire.csr_pem }),
    toWireResponse: (reply) => ({
      cert_pem: reply.cert_pem,
      ca_cert_pem: reply.ca_cert_pem,
      workspace_id: reply.workspace_id,
      workspace_name: reply.workspace_name,
      ca_host_name: reply.ca_host_name,
      ca_address: reply.ca_address,
    }),
    fromWireResponse: (wire) =>
      Object.freeze({
        cert_pem: wire.cert_pem,
        ca_cert_pem: wire.ca_cert_pem,
        workspace_id: wire.workspace_id,
        workspace_name: wire.workspace_name,
        ca_host_name: wire.ca_host_name.toLowerCase(),
        ca_address: wire.ca_address,
      }),
  }),
  Renew: codec('Renew', {
    toWireRequest: (request) => ({ csr_pem: request.csr_pem }),
    fromWireRequest: (wire) => Object.freeze({ csr_pem: wire.csr_pem }),
    toWireResponse: (reply) => ({ cert_pem: reply.cert_pem }),
    fromWireResponse: (wire) => Object.freeze({ cert_pem: wire.cert_pem }),
  }),
  Announce: codec('Announce', {
    toWireRequest: (request) => ({ address: request.address }),
    fromWireRequest: (wire) => Object.freeze({ address: wire.address }),
    toWireResponse: toWireAnnounce,
    fromWireResponse: fromWireAnnounce,
  }),
  Roster: codec('Roster', {
    toWireRequest: () => ({}),
    fromWireRequest: () => Object.freeze({}),
    toWireResponse: toWireRoster,
    fromWireResponse: fromWireRoster,
  }),
};
