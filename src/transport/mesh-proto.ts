/**
 * Loads `proto/cmdop/v1/mesh.proto` at run time with @grpc/proto-loader and wraps its loosely
 * typed method definitions in one typed shape. Deserialising never throws: bytes that are not
 * a protobuf message of the expected type become a {@link MalformedMessage}, which the server
 * answers with INVALID_ARGUMENT (grpc-js would otherwise answer INTERNAL).
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSync, type MethodDefinition, type PackageDefinition } from '@grpc/proto-loader';
import { CmdopError } from '../errors.js';
import { MESH_METHODS, MESH_SERVICE, PROTO_LOADER_OPTIONS, type MeshMethod } from './wire-types.js';

/** Path of the proto file inside the package. */
const PROTO_RELATIVE = join('proto', 'cmdop', 'v1', 'mesh.proto');

/** Bytes that did not decode as the expected message. */
export class MalformedMessage {
  /** Why protobuf decoding failed. */
  readonly reason: string;

  constructor(reason: string) {
    this.reason = reason;
  }
}

/** One RPC's path and (de)serialisers, typed. */
export interface WireMethod {
  /** `/cmdop.v1.Mesh/<Method>`. */
  readonly path: string;
  serializeRequest(message: object): Buffer;
  deserializeRequest(bytes: Buffer): unknown;
  serializeResponse(message: object): Buffer;
  deserializeResponse(bytes: Buffer): unknown;
}

/** The loaded wire format: every RPC of the Mesh service. */
export interface MeshWire {
  readonly methods: { readonly [M in MeshMethod]: WireMethod };
}

/** Finds `proto/cmdop/v1/mesh.proto` above this module (it runs from `src/` or from `dist/src/`). */
export function meshProtoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = join(dir, PROTO_RELATIVE);
    if (existsSync(candidate)) return candidate;
    const parent = resolve(dir, '..');
    if (parent === dir) {
      throw new CmdopError('config', `the wire definition ${PROTO_RELATIVE} is missing from the installed package`, {
        hint: 'Reinstall cmdop-mesh; the proto/ folder ships with it.',
      });
    }
    dir = parent;
  }
}

/** Loads the package definition of `mesh.proto` with the options the wire types assume. */
export function loadMeshPackageDefinition(protoPath: string = meshProtoPath()): PackageDefinition {
  return loadSync(protoPath, { ...PROTO_LOADER_OPTIONS });
}

let cached: MeshWire | undefined;

/** The Mesh service's methods, loaded once per process. */
export function meshWire(): MeshWire {
  cached ??= buildWire(loadMeshPackageDefinition());
  return cached;
}

function buildWire(definition: PackageDefinition): MeshWire {
  const service = definition[MESH_SERVICE];
  const methods = {} as Record<MeshMethod, WireMethod>;
  for (const name of Object.keys(MESH_METHODS) as MeshMethod[]) {
    const method = service === undefined ? undefined : methodOf(service, name);
    if (method === undefined) {
      throw new CmdopError('config', `the wire definition has no ${MESH_SERVICE}/${name}; proto/ and this build differ`);
    }
    methods[name] = {
      path: method.path,
      serializeRequest: (message) => method.requestSerialize(message),
      deserializeRequest: (bytes) => safely(() => method.requestDeserialize(bytes)),
      serializeResponse: (message) => method.responseSerialize(message),
      deserializeResponse: (bytes) => safely(() => method.responseDeserialize(bytes)),
    };
  }
  return { methods };
}

/** Reads one method out of proto-loader's loosely typed service definition. */
function methodOf(service: PackageDefinition[string], name: string): MethodDefinition<object, object> | undefined {
  if (!(name in service)) return undefined;
  const candidate: unknown = (service as Record<string, unknown>)[name];
  if (typeof candidate !== 'object' || candidate === null || !('path' in candidate) || !('requestSerialize' in candidate)) return undefined;
  const method = candidate as MethodDefinition<object, object>;
  return method.requestStream || method.responseStream ? undefined : method;
}

function safely(decode: () => object): unknown {
  try {
    return decode();
  } catch (error) {
    return new MalformedMessage(error instanceof Error ? error.message : String(error));
  }
}
