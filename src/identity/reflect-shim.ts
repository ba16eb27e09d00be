/**
 * The small part of the Reflect metadata API that `tsyringe` (used inside `@peculiar/x509`)
 * needs: it refuses to load unless `Reflect.getMetadata` exists. Installed only when no
 * polyfill (such as the `reflect-metadata` package) is present already, so it never replaces one.
 *
 * `@peculiar/x509` registers its classes with `@injectable()` and no constructor parameters,
 * so nothing it does depends on emitted design-type metadata; this implements the API
 * faithfully all the same (own and inherited lookups, per target and property).
 */

type MetadataKey = unknown;
type PropertyKey = string | symbol | undefined;

interface MetadataApi {
  defineMetadata(key: MetadataKey, value: unknown, target: object, property?: PropertyKey): void;
  hasOwnMetadata(key: MetadataKey, target: object, property?: PropertyKey): boolean;
  hasMetadata(key: MetadataKey, target: object, property?: PropertyKey): boolean;
  getOwnMetadata(key: MetadataKey, target: object, property?: PropertyKey): unknown;
  getMetadata(key: MetadataKey, target: object, property?: PropertyKey): unknown;
  metadata(key: MetadataKey, value: unknown): (target: object, property?: PropertyKey) => void;
}

const store = new WeakMap<object, Map<PropertyKey, Map<MetadataKey, unknown>>>();

function ownMap(target: object, property: PropertyKey, create: boolean): Map<MetadataKey, unknown> | undefined {
  let byProperty = store.get(target);
  if (byProperty === undefined) {
    if (!create) return undefined;
    byProperty = new Map();
    store.set(target, byProperty);
  }
  let entries = byProperty.get(property);
  if (entries === undefined && create) {
    entries = new Map();
    byProperty.set(property, entries);
  }
  return entries;
}

function findMap(key: MetadataKey, target: object, property: PropertyKey): Map<MetadataKey, unknown> | undefined {
  for (let current: object | null = target; current !== null; current = Object.getPrototypeOf(current) as object | null) {
    const entries = ownMap(current, property, false);
    if (entries?.has(key) === true) return entries;
  }
  return undefined;
}

const api: MetadataApi = {
  defineMetadata(key, value, target, property) {
    ownMap(target, property, true)?.set(key, value);
  },
  hasOwnMetadata(key, target, property) {
    return ownMap(target, property, false)?.has(key) === true;
  },
  hasMetadata(key, target, property) {
    return findMap(key, target, property) !== undefined;
  },
  getOwnMetadata(key, target, property) {
    return ownMap(target, property, false)?.get(key);
  },
  getMetadata(key, target, property) {
    return findMap(key, target, property)?.get(key);
  },
  metadata(key, value) {
    return (target, property) => {
      api.defineMetadata(key, value, target, property);
    };
  },
};

const reflect = Reflect as unknown as Partial<MetadataApi>;
if (typeof reflect.getMetadata !== 'function') {
  for (const [name, fn] of Object.entries(api)) {
    Object.defineProperty(Reflect, name, { value: fn, writable: true, configurable: true, enumerable: false });
  }
}
