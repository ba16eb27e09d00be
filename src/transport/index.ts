/** The transport layer (DESIGN.md §2, §6): the Mesh gRPC server and client over mutual TLS, and the wire format. */
export * from './grpc-client.js';
export * from './grpc-server.js';
export * from './grpc-status.js';
export * from './mesh-handler.js';
export * from './peer-identity.js';
export { CODECS, type MeshApi, type MethodCodec } from './wire-codec.js';
export * from './wire-types.js';
