/**
 * The TypeScript side of `proto/cmdop/v1/mesh.proto`: one table, {@link WIRE_SHAPES}, lists
 * every message's fields (number and type), and the message types are derived from it. The
 * proto-drift test compares this table with the `.proto` as @grpc/proto-loader reads it, so
 * the two cannot drift apart without CI failing.
 *
 * The derived types are what proto-loader hands over with the options in {@link PROTO_LOADER_OPTIONS}
 * (`keepCase`, `longs: Number`, `bytes: Buffer`, `defaults: true`, `oneofs: true`): every plain
 * field is present with its default, an unset message field is `null`, an unset proto3
 * `optional` field is absent.
 */

/** Scalar field types used on the wire, and the JavaScript values proto-loader gives for them. */
interface ScalarValues {
  string: string;
  bytes: Buffer;
  bool: boolean;
  int32: number;
  uint32: number;
  uint64: number;
}

/** A scalar field type name. */
export type ScalarType = keyof ScalarValues;

/** The scalar types, in a fixed order, for code that walks field specs. */
export const SCALAR_TYPES: readonly ScalarType[] = ['string', 'bytes', 'bool', 'int32', 'uint32', 'uint64'];

/**
 * Every message of `cmdop.v1`: field name → `[field number, type]`, where the type is a scalar
 * (`'string'`), a proto3 optional scalar (`'optional uint32'`), a message (`'Decision'`), a
 * repeated message (`'repeated DirEntry'`) or a repeated scalar (`'repeated string'`). Add fields here and in the `.proto` together.
 */
export const WIRE_SHAPES = {
  Decision: {
    decision: [1, 'string'],
    source: [2, 'string'],
    rule: [3, 'string'],
    rule_id: [4, 'string'],
    reason: [5, 'string'],
    scope: [6, 'string'],
  },
  PingRequest: {},
  PingResponse: {
    host_name: [1, 'string'],
    version: [2, 'string'],
  },
  ExecuteCommandRequest: {
    command: [1, 'string'],
    cwd: [2, 'string'],
    timeout_ms: [3, 'optional uint32'],
  },
  ExecuteCommandResponse: {
    decision: [1, 'Decision'],
    exit_code: [2, 'optional int32'],
    signal: [3, 'string'],
    stdout: [4, 'string'],
    stderr: [5, 'string'],
    stdout_truncated: [6, 'bool'],
    stderr_truncated: [7, 'bool'],
    timed_out: [8, 'bool'],
    aborted: [9, 'bool'],
    duration_ms: [10, 'uint64'],
  },
  ReadFileRequest: {
    path: [1, 'string'],
    offset: [2, 'uint64'],
    length: [3, 'optional uint64'],
  },
  ReadFileResponse: {
    decision: [1, 'Decision'],
    path: [2, 'string'],
    size: [3, 'uint64'],
    offset: [4, 'uint64'],
    bytes: [5, 'uint64'],
    encoding: [6, 'string'],
    content: [7, 'bytes'],
    truncated: [8, 'bool'],
    eof: [9, 'bool'],
  },
  WriteFileRequest: {
    path: [1, 'string'],
    content: [2, 'bytes'],
    mode: [3, 'optional uint32'],
  },
  WriteFileResponse: {
    decision: [1, 'Decision'],
    path: [2, 'string'],
    bytes: [3, 'uint64'],
    created: [4, 'bool'],
  },
  ListDirRequest: {
    path: [1, 'string'],
  },
  DirEntry: {
    name: [1, 'string'],
    type: [2, 'string'],
    size: [3, 'optional uint64'],
  },
  ListDirResponse: {
    decision: [1, 'Decision'],
    path: [2, 'string'],
    entries: [3, 'repeated DirEntry'],
    truncated: [4, 'bool'],
  },
  JoinRequest: {
    token: [1, 'string'],
    host_name: [2, 'string'],
    csr_pem: [3, 'string'],
  },
  JoinResponse: {
    cert_pem: [1, 'string'],
    ca_cert_pem: [2, 'string'],
    workspace_id: [3, 'string'],
    workspace_name: [4, 'string'],
    ca_host_name: [5, 'string'],
    ca_address: [6, 'string'],
  },
  RenewRequest: {
    csr_pem: [1, 'string'],
  },
  RenewResponse: {
    cert_pem: [1, 'string'],
  },
  AnnounceRequest: {
    address: [1, 'string'],
  },
  AnnounceResponse: {
    peers: [1, 'repeated RosterEntry'],
    revoked: [2, 'repeated string'],
    api_keys: [3, 'repeated ApiKeyEntry'],
    oidc: [4, 'OidcConfig'],
  },
  ApiKeyEntry: {
    id: [1, 'string'],
    name: [2, 'string'],
    secret_hash: [3, 'string'],
    expires_at: [4, 'string'],
    revoked_at: [5, 'string'],
  },
  OidcConfig: {
    issuer: [1, 'string'],
    client_id: [2, 'string'],
    audience: [3, 'string'],
  },
  RosterRequest: {},
  RosterResponse: {
    peers: [1, 'repeated RosterEntry'],
    revoked: [2, 'repeated string'],
  },
  RosterEntry: {
    name: [1, 'string'],
    address: [2, 'string'],
    last_seen: [3, 'string'],
    online: [4, 'bool'],
  },
} as const satisfies Readonly<Record<string, Readonly<Record<string, readonly [number, string]>>>>;

/** The name of a message in package `cmdop.v1`. */
export type MessageName = keyof typeof WIRE_SHAPES;

/** The protobuf package every message and the service live in. */
export const WIRE_PACKAGE = 'cmdop.v1';

/** The service name, fully qualified. */
export const MESH_SERVICE = `${WIRE_PACKAGE}.Mesh`;

/** The RPCs of the Mesh service: method name → request and response message (all unary). */
export const MESH_METHODS = {
  Ping: { request: 'PingRequest', response: 'PingResponse' },
  ExecuteCommand: { request: 'ExecuteCommandRequest', response: 'ExecuteCommandResponse' },
  ReadFile: { request: 'ReadFileRequest', response: 'ReadFileResponse' },
  WriteFile: { request: 'WriteFileRequest', response: 'WriteFileResponse' },
  ListDir: { request: 'ListDirRequest', response: 'ListDirResponse' },
  Join: { request: 'JoinRequest', response: 'JoinResponse' },
  Renew: { request: 'RenewRequest', response: 'RenewResponse' },
  Announce: { request: 'AnnounceRequest', response: 'AnnounceResponse' },
  Roster: { request: 'RosterRequest', response: 'RosterResponse' },
} as const satisfies Readonly<Record<string, { readonly request: MessageName; readonly response: MessageName }>>;

/** The name of an RPC of the Mesh service. */
export type MeshMethod = keyof typeof MESH_METHODS;

/**
 * The RPCs a caller without a certificate of the workspace may make: only Join, which its
 * one-time token authenticates. Every other RPC is refused before the handler without one.
 */
export const OPEN_METHODS: ReadonlySet<MeshMethod> = new Set<MeshMethod>(['Join']);

/**
 * The methods a caller without a host certificate may call with a bearer credential (API key,
 * OAuth access token, share token): the tools, which the receiver's gate decides, Ping, and
 * Roster (to find a host's address). Renew and Announce are for hosts only.
 */
export const BEARER_METHODS: ReadonlySet<MeshMethod> = new Set<MeshMethod>(['Ping', 'ExecuteCommand', 'ReadFile', 'WriteFile', 'ListDir', 'Roster']);

/** The options every load of `mesh.proto` uses; the derived types assume exactly these. */
export const PROTO_LOADER_OPTIONS = Object.freeze({ keepCase: true, longs: Number, bytes: Buffer, defaults: true, oneofs: true });

type Shape<M extends MessageName> = (typeof WIRE_SHAPES)[M];
type SpecOf<M extends MessageName, K extends keyof Shape<M>> = Shape<M>[K] extends readonly [number, infer S] ? S : never;

/** The JavaScript value of a field with type spec `S`. */
type FieldValue<S> = S extends ScalarType
  ? ScalarValues[S]
  : S extends `optional ${infer T extends ScalarType}`
    ? ScalarValues[T]
    : S extends `repeated ${infer T extends ScalarType}`
      ? readonly ScalarValues[T][]
      : S extends `repeated ${infer M extends MessageName}`
        ? readonly WireMessage<M>[]
        : S extends MessageName
          ? WireMessage<S> | null
          : never;

type OptionalKeys<M extends MessageName> = {
  [K in keyof Shape<M>]: SpecOf<M, K> extends `optional ${string}` ? K : never;
}[keyof Shape<M>];

/** A message of `cmdop.v1` as proto-loader decodes it (and as it is given to the encoder). */
export type WireMessage<M extends MessageName> = {
  readonly [K in Exclude<keyof Shape<M>, OptionalKeys<M>>]: FieldValue<SpecOf<M, K>>;
} & {
  readonly [K in OptionalKeys<M>]?: FieldValue<SpecOf<M, K>> | undefined;
};

/** `cmdop.v1.Decision`: how the receiver's gate decided (empty strings for absent rule fields). */
export type WireDecision = WireMessage<'Decision'>;
/** `cmdop.v1.PingRequest`. */
export type WirePingRequest = WireMessage<'PingRequest'>;
/** `cmdop.v1.PingResponse`. */
export type WirePingResponse = WireMessage<'PingResponse'>;
/** `cmdop.v1.ExecuteCommandRequest`. */
export type WireExecuteCommandRequest = WireMessage<'ExecuteCommandRequest'>;
/** `cmdop.v1.ExecuteCommandResponse`. */
export type WireExecuteCommandResponse = WireMessage<'ExecuteCommandResponse'>;
/** `cmdop.v1.ReadFileRequest`. */
export type WireReadFileRequest = WireMessage<'ReadFileRequest'>;
/** `cmdop.v1.ReadFileResponse`. */
export type WireReadFileResponse = WireMessage<'ReadFileResponse'>;
/** `cmdop.v1.WriteFileRequest`. */
export type WireWriteFileRequest = WireMessage<'WriteFileRequest'>;
/** `cmdop.v1.WriteFileResponse`. */
export type WireWriteFileResponse = WireMessage<'WriteFileResponse'>;
/** `cmdop.v1.ListDirRequest`. */
export type WireListDirRequest = WireMessage<'ListDirRequest'>;
/** `cmdop.v1.DirEntry`. */
export type WireDirEntry = WireMessage<'DirEntry'>;
/** `cmdop.v1.ListDirResponse`. */
export type WireListDirResponse = WireMessage<'ListDirResponse'>;
/** `cmdop.v1.JoinRequest`. */
export type WireJoinRequest = WireMessage<'JoinRequest'>;
/** `cmdop.v1.JoinResponse`. */
export type WireJoinResponse = WireMessage<'JoinResponse'>;
/** `cmdop.v1.RenewRequest`. */
export type WireRenewRequest = WireMessage<'RenewRequest'>;
/** `cmdop.v1.RenewResponse`. */
export type WireRenewResponse = WireMessage<'RenewResponse'>;
/** `cmdop.v1.AnnounceRequest`. */
export type WireAnnounceRequest = WireMessage<'AnnounceRequest'>;
/** `cmdop.v1.AnnounceResponse`. */
export type WireAnnounceResponse = WireMessage<'AnnounceResponse'>;
/** `cmdop.v1.RosterRequest`. */
export type WireRosterRequest = WireMessage<'RosterRequest'>;
/** `cmdop.v1.RosterResponse`. */
export type WireRosterResponse = WireMessage<'RosterResponse'>;
/** `cmdop.v1.RosterEntry`. */
export type WireRosterEntry = WireMessage<'RosterEntry'>;

/** The request message type of `method`. */
export type WireRequest<T extends MeshMethod> = WireMessage<(typeof MESH_METHODS)[T]['request']>;
/** The response message type of `method`. */
export type WireResponse<T extends MeshMethod> = WireMessage<(typeof MESH_METHODS)[T]['response']>;
