/**
 * The `.proto` and `src/transport/wire-types.ts` describe the same wire: every message has
 * exactly the fields WIRE_SHAPES lists (names, numbers, types, optional/repeated), and the
 * service has exactly the RPCs MESH_METHODS lists. CI fails here when one changes without the other.
 */
import { describe, expect, it } from 'vitest';
import { loadMeshPackageDefinition, meshWire } from '../../src/transport/mesh-proto.js';
import { MESH_METHODS, MESH_SERVICE, SCALAR_TYPES, WIRE_PACKAGE, WIRE_SHAPES, type MessageName } from '../../src/transport/wire-types.js';

const definition = loadMeshPackageDefinition();

/** The parts of a DescriptorProto field that proto-loader reports and this test reads. */
interface DescriptorField {
  readonly name: string;
  readonly number: number;
  readonly label: string;
  readonly type: string;
  readonly typeName: string;
}

interface Descriptor {
  readonly field: readonly DescriptorField[];
  readonly oneofDecl: readonly { readonly name: string }[];
}

function descriptorOf(name: string): Descriptor {
  const entry = definition[`${WIRE_PACKAGE}.${name}`];
  expect(entry, `message ${name} in mesh.proto`).toBeDefined();
  expect(entry).toHaveProperty('format', 'Protocol Buffer 3 DescriptorProto');
  return (entry as unknown as { type: Descriptor }).type;
}

/** A descriptor field written in WIRE_SHAPES notation. */
function specOf(field: DescriptorField, syntheticOneofs: ReadonlySet<string>): string {
  const scalar = field.type.replace(/^TYPE_/, '').toLowerCase();
  const base = field.type === 'TYPE_MESSAGE' ? field.typeName.replace(`${WIRE_PACKAGE}.`, '') : scalar;
  if (field.label === 'LABEL_REPEATED') return `repeated ${base}`;
  if (syntheticOneofs.has(`_${field.name}`)) return `optional ${base}`;
  return base;
}

describe('mesh.proto matches wire-types.ts', () => {
  const protoMessages = Object.keys(definition)
    .filter((key) => key.startsWith(`${WIRE_PACKAGE}.`) && key !== MESH_SERVICE)
    .map((key) => key.slice(WIRE_PACKAGE.length + 1))
    .sort();

  it('declares exactly the messages WIRE_SHAPES lists', () => {
    expect(protoMessages).toEqual(Object.keys(WIRE_SHAPES).sort());
  });

  it.each(Object.keys(WIRE_SHAPES) as MessageName[])('%s has exactly the fields, numbers and types of WIRE_SHAPES', (name) => {
    const descriptor = descriptorOf(name);
    // proto3 `optional` shows up as a synthetic one-field oneof named `_<field>`; real oneofs are not used.
    const synthetic = new Set(descriptor.oneofDecl.map((oneof) => oneof.name));
    for (const oneof of synthetic) {
      expect(descriptor.field.map((field) => `_${field.name}`), `oneof ${oneof} is a proto3 optional`).toContain(oneof);
    }
    const fromProto = Object.fromEntries(descriptor.field.map((field) => [field.name, [field.number, specOf(field, synthetic)]]));
    expect(fromProto).toEqual(WIRE_SHAPES[name]);
  });

  it('uses only the scalar types the wire types know', () => {
    for (const name of Object.keys(WIRE_SHAPES) as MessageName[]) {
      for (const field of descriptorOf(name).field) {
        if (field.type === 'TYPE_MESSAGE') continue;
        expect(SCALAR_TYPES).toContain(field.type.replace(/^TYPE_/, '').toLowerCase());
      }
    }
  });

  it('declares exactly the unary RPCs MESH_METHODS lists', () => {
    const service = definition[MESH_SERVICE] as unknown as Record<string, { path: string; requestStream: boolean; responseStream: boolean; requestType: { type: { name: string } }; responseType: { type: { name: string } } }>;
    const fromProto = Object.fromEntries(
      Object.entries(service)
        // proto-loader lists each method under its original name and its camelCase alias.
        .filter(([key, method]) => method.path.endsWith(`/${key}`))
        .map(([key, method]) => {
          expect(method.requestStream || method.responseStream, `${key} is unary`).toBe(false);
          return [key, { request: method.requestType.type.name, response: method.responseType.type.name }];
        }),
    );
    expect(fromProto).toEqual(MESH_METHODS);
  });

  it('decodes an empty message to every plain field at its default, optional fields absent and messages null', () => {
    const decoded = meshWire().methods.ExecuteCommand.deserializeResponse(Buffer.alloc(0));
    expect(decoded).toEqual({
      decision: null,
      signal: '',
      stdout: '',
      stderr: '',
      stdout_truncated: false,
      stderr_truncated: false,
      timed_out: false,
      aborted: false,
      duration_ms: 0,
    });
    const read = meshWire().methods.ReadFile.deserializeRequest(Buffer.alloc(0));
    expect(read).toEqual({ path: '', offset: 0 });
    const write = meshWire().methods.WriteFile.deserializeRequest(Buffer.alloc(0));
    expect(write).toEqual({ path: '', content: Buffer.alloc(0) });
    // A reply from a host that predates the revoked list decodes to an empty one.
    expect(meshWire().methods.Announce.deserializeResponse(Buffer.alloc(0))).toEqual({ peers: [], revoked: [], api_keys: [], oidc: null });
    expect(meshWire().methods.Roster.deserializeResponse(Buffer.alloc(0))).toEqual({ peers: [], revoked: [] });
  });
});
