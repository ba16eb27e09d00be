/**
 * `config.yaml` (DESIGN.md §5): daemon settings addressed by dotted keys (`permissions.enabled`).
 * The file nests them (`permissions: { enabled: false }`); a literal dotted key at the top level
 * (`permissions.enabled: false`, as the reference writes it) is read too. Unknown keys and bad
 * values are configuration errors with their line, never silently ignored.
 */
import { Document, YAMLMap, isMap, isScalar, isSeq, type Node } from 'yaml';
import { CmdopError } from '../errors.js';
import { configPath, ensureCmdopHome } from './cmdop-home.js';
import { updateStateFile } from './file-lock.js';
import { readSecureFile } from './secure-file.js';
import { lineOf, parseYamlSource, sourceError, type SourceProblem, type YamlSource } from './yaml-source.js';

/** A setting's value. */
export type ConfigScalar = boolean | number | string;

/** What a setting is and what it is when the file does not set it. */
export type ConfigKeySpec =
  | { readonly type: 'boolean'; readonly default: boolean; readonly description: string }
  | { readonly type: 'integer'; readonly default: number; readonly min: number; readonly max: number; readonly unit: string; readonly description: string }
  | { readonly type: 'address'; readonly default: string; readonly description: string };

/** Every setting config.yaml may hold. */
export const CONFIG_KEYS = {
  'permissions.enabled': {
    type: 'boolean',
    default: true,
    description: 'Run the permission gate on incoming calls. The floor applies even when this is false.',
  },
  'permissions.self_bypass': {
    type: 'boolean',
    default: true,
    description: "Skip the gate for calls whose authenticated host and principal are this host's own.",
  },
  'permissions.ask_timeout': {
    type: 'integer',
    default: 60,
    min: 1,
    max: 3600,
    unit: 'seconds',
    description: 'How long an ask prompt waits for the operator before the call is denied.',
  },
  'agent.listen': {
    type: 'address',
    default: '127.0.0.1:8470',
    description: 'host:port the daemon serves peers on (gRPC over mutual TLS); port 0 picks a free one. The default is loopback only.',
  },
  'agent.announce_interval': {
    type: 'integer',
    default: 15,
    min: 1,
    max: 3600,
    unit: 'seconds',
    description: 'How often a joined daemon announces its address to the workspace and refreshes its roster.',
  },
} as const satisfies Readonly<Record<string, ConfigKeySpec>>;

/** A known setting's dotted name. */
export type ConfigKey = keyof typeof CONFIG_KEYS;

/** The validated, frozen settings, defaults filled in. */
export interface CmdopConfig {
  readonly permissions: {
    readonly enabled: boolean;
    readonly self_bypass: boolean;
    /** Seconds. */
    readonly ask_timeout: number;
  };
  readonly agent: {
    /** `host:port`. */
    readonly listen: string;
    /** Seconds. */
    readonly announce_interval: number;
  };
}

/** One setting's effective value and where it came from. */
export interface ConfigValue {
  readonly key: ConfigKey;
  readonly value: ConfigScalar;
  /** `file` when config.yaml sets it, `default` otherwise. */
  readonly source: 'file' | 'default';
}

/** What {@link setConfigValue} did. */
export interface ConfigChange {
  readonly key: ConfigKey;
  readonly value: ConfigScalar;
  readonly previous: ConfigScalar;
  /** Whether the effective value changed. */
  readonly changed: boolean;
}

const KNOWN_KEYS = Object.keys(CONFIG_KEYS) as ConfigKey[];
const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = { true: true, false: false, yes: true, no: false, on: true, off: false, '1': true, '0': false };
interface ConfigEntry {
  readonly value: ConfigScalar;
  readonly line: number | undefined;
  /** Written as a literal dotted key at the top level rather than nested. */
  readonly flat: boolean;
}

interface ConfigState {
  readonly source: YamlSource | undefined;
  readonly entries: ReadonlyMap<ConfigKey, ConfigEntry>;
}

/** Reads config.yaml from the state directory; a missing file gives the defaults. */
export async function loadConfig(home: string): Promise<CmdopConfig> {
  const state = await readState(home);
  const value = (key: ConfigKey): ConfigScalar => state.entries.get(key)?.value ?? CONFIG_KEYS[key].default;
  return Object.freeze({
    permissions: Object.freeze({
      enabled: value('permissions.enabled') === true,
      self_bypass: value('permissions.self_bypass') === true,
      ask_timeout: Number(value('permissions.ask_timeout')),
    }),
    agent: Object.freeze({ listen: String(value('agent.listen')), announce_interval: Number(value('agent.announce_interval')) }),
  });
}

/** Reads one setting; an unknown key is CmdopError('invalid_input') listing the known keys. */
export async function getConfigValue(home: string, key: string): Promise<ConfigValue> {
  const known = checkKey(key);
  const state = await readState(home);
  return describe(known, state);
}

/** Reads every setting, in the order of {@link CONFIG_KEYS}. */
export async function listConfigValues(home: string): Promise<readonly ConfigValue[]> {
  const state = await readState(home);
  return Object.freeze(KNOWN_KEYS.map((key) => describe(key, state)));
}

/**
 * Sets one setting from its command-line text, under the file's lock and with an atomic write;
 * an unknown key or a bad value is CmdopError('invalid_input') and changes nothing.
 */
export async function setConfigValue(home: string, key: string, rawValue: string): Promise<ConfigChange> {
  const known = checkKey(key);
  const value = parseValue(known, rawValue);
  await ensureCmdopHome(home);
  const file = configPath(home);
  let previous: ConfigScalar | undefined;
  await updateStateFile(file, (current) => {
    const state = current === undefined ? { source: undefined, entries: new Map<ConfigKey, ConfigEntry>() } : parseConfig(current, file);
    const entry = state.entries.get(known);
    previous = entry?.value ?? CONFIG_KEYS[known].default;
    if (entry?.value === value) return undefined;
    // Edit the parsed document in place so comments and the rest of the file stay as written.
    const doc: Document = state.source?.doc ?? new Document();
    if (!isMap(doc.contents)) doc.contents = new YAMLMap();
    if (entry?.flat === true) {
      doc.set(known, value);
    } else {
      const path = known.split('.');
      const parent = path.slice(0, -1);
      if (parent.length > 0 && !isMap(doc.getIn(parent, true))) doc.setIn(parent, new YAMLMap());
      doc.setIn(path, value);
    }
    const text = doc.toString({ lineWidth: 0 });
    if (parseConfig(text, file).entries.get(known)?.value !== value) {
      throw new CmdopError('internal', `the new ${file} would not read back; nothing was written`);
    }
    return text;
  });
  const before = previous ?? CONFIG_KEYS[known].default;
  return Object.freeze({ key: known, value, previous: before, changed: before !== value });
}

/** Parses the text of a config file, throwing CmdopError('config') naming `file`, the line and the fix. */
function parseConfig(text: string, file: string): ConfigState {
  const source = parseYamlSource(file, text);
  const entries = new Map<ConfigKey, ConfigEntry>();
  const contents = source.doc.contents;
  if (contents === null) return { source, entries };
  if (!isMap(contents)) {
    throw sourceError(file, [
      { line: lineOf(source, contents), message: 'the file must be a mapping of settings', hint: 'For example:\n  permissions:\n    enabled: true' },
    ]);
  }
  const problems: SourceProblem[] = [];
  walk(source, contents, '', entries, problems);
  if (problems.length > 0) throw sourceError(file, problems);
  return { source, entries };
}

function walk(source: YamlSource, map: YAMLMap, prefix: string, entries: Map<ConfigKey, ConfigEntry>, problems: SourceProblem[]): void {
  for (const pair of map.items) {
    const keyNode = pair.key;
    const name: unknown = isScalar(keyNode) ? keyNode.value : undefined;
    const line = lineOf(source, keyNode);
    if (typeof name !== 'string') {
      problems.push({ line, message: 'a key must be a plain name', hint: knownKeysHint() });
      continue;
    }
    const dotted = prefix === '' ? name : `${prefix}.${name}`;
    const value = pair.value as Node | null;
    if (isKnownKey(dotted)) {
      const js: unknown = isScalar(value) ? value.value : value === null ? null : isMap(value) ? {} : isSeq(value) ? [] : '(an alias)';
      const parsed = checkFileValue(dotted, js);
      if (typeof parsed === 'string' && parsed.startsWith('\u0000')) {
        problems.push({ line: lineOf(source, value) ?? line, message: parsed.slice(1), hint: valueHint(dotted) });
        continue;
      }
      const earlier = entries.get(dotted);
      if (earlier !== undefined) {
        problems.push({
          line,
          message: `${dotted} is set twice${earlier.line === undefined ? '' : ` (first on line ${earlier.line})`}`,
          hint: 'Keep one of the two.',
        });
        continue;
      }
      entries.set(dotted, { value: parsed, line, flat: prefix === '' && name.includes('.') });
      continue;
    }
    const isPrefix = KNOWN_KEYS.some((key) => key.startsWith(`${dotted}.`));
    if (isPrefix && isMap(value)) {
      walk(source, value, dotted, entries, problems);
    } else if (isPrefix && (value === null || (isScalar(value) && value.value === null))) {
      // An empty section (`permissions:` with nothing under it) sets nothing.
    } else if (isPrefix) {
      problems.push({ line, message: `${dotted} must be a mapping of settings`, hint: knownKeysHint() });
    } else {
      problems.push({ line, message: `unknown setting ${JSON.stringify(dotted)}`, hint: `Check the spelling, or remove it. ${knownKeysHint()}` });
    }
  }
}

async function readState(home: string): Promise<ConfigState> {
  const file = configPath(home);
  const text = await readSecureFile(file);
  return text === undefined ? { source: undefined, entries: new Map() } : parseConfig(text, file);
}

function describe(key: ConfigKey, state: ConfigState): ConfigValue {
  const entry = state.entries.get(key);
  return Object.freeze(entry === undefined ? { key, value: CONFIG_KEYS[key].default, source: 'default' } : { key, value: entry.value, source: 'file' });
}

function isKnownKey(key: string): key is ConfigKey {
  return Object.hasOwn(CONFIG_KEYS, key);
}

function checkKey(key: string): ConfigKey {
  if (isKnownKey(key)) return key;
  throw new CmdopError('invalid_input', `unknown setting ${JSON.stringify(key)}`, {
    hint: knownKeysHint(),
    details: { key, known: KNOWN_KEYS },
  });
}

function parseValue(key: ConfigKey, raw: string): ConfigScalar {
  const spec: ConfigKeySpec = CONFIG_KEYS[key];
  if (spec.type === 'boolean') {
    const word = raw.trim().toLowerCase();
    if (Object.hasOwn(BOOLEAN_WORDS, word)) return BOOLEAN_WORDS[word] === true;
    throw new CmdopError('invalid_input', `${key} takes true or false, not ${JSON.stringify(raw)}`, {
      hint: `Accepted values: true, false (also yes/no, on/off, 1/0). Example: cmdop config set ${key} false`,
      details: { key, value: raw, accepted: Object.keys(BOOLEAN_WORDS) },
    });
  }
  const checked = checkFileValue(key, spec.type === 'integer' && /^\s*\d+\s*$/.test(raw) ? Number(raw) : raw.trim());
  if (typeof checked === 'string' && checked.startsWith('\u0000')) {
    throw new CmdopError('invalid_input', checked.slice(1), { hint: valueHint(key), details: { key, value: raw } });
  }
  return checked;
}

/** The value of `key` as a file holds it, or a problem text marked by a leading NUL. */
function checkFileValue(key: ConfigKey, js: unknown): ConfigScalar {
  const spec: ConfigKeySpec = CONFIG_KEYS[key];
  switch (spec.type) {
    case 'boolean':
      return typeof js === 'boolean' ? js : `\u0000${key} must be true or false, not ${describeValue(js)}`;
    case 'integer':
      return typeof js === 'number' && Number.isSafeInteger(js) && js >= spec.min && js <= spec.max
        ? js
        : `\u0000${key} must be a whole number of ${spec.unit} from ${spec.min} to ${spec.max}, not ${describeValue(js)}`;
    case 'address':
      return typeof js === 'string' && isListenAddress(js) ? js : `\u0000${key} must be host:port (such as 127.0.0.1:8470 or [::1]:8470), not ${describeValue(js)}`;
  }
}

/** `host:port` or `[v6]:port`, port 0..65535 (0: any free port, as the daemon then reports). */
export function isListenAddress(text: string): boolean {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (m === null) return false;
  const port = Number(m[2]);
  return port >= 0 && port <= 65535;
}

function valueHint(key: ConfigKey): string {
  const spec: ConfigKeySpec = CONFIG_KEYS[key];
  const last = key.split('.').pop() ?? key;
  switch (spec.type) {
    case 'boolean':
      return `Write ${last}: true or false (no quotes).`;
    case 'integer':
      return `Write ${last}: ${spec.default} (a number of ${spec.unit}, ${spec.min} to ${spec.max}).`;
    case 'address':
      return `Write ${last}: "${spec.default}".`;
  }
}

function knownKeysHint(): string {
  return `Known settings: ${KNOWN_KEYS.join(', ')}.`;
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return 'an empty value';
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}
