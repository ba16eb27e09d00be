/**
 * `config.yaml` (DESIGN.md §5): daemon settings addressed by dotted keys (`permissions.enabled`).
 * The file nests them (`permissions: { enabled: false }`); a literal dotted key at the top level
 * (`permissions.enabled: false`, as the reference writes it) is read too. Unknown keys and bad
 * values are configuration errors with their line, never silently ignored.
 */
import { Document, YAMLMap, isMap, isScalar, isSeq, type Node } from 'yaml';
import { z } from 'zod';
import { CmdopError } from '../errors.js';
import { configPath, ensureCmdopHome } from './cmdop-home.js';
import { updateStateFile } from './file-lock.js';
import { readSecureFile } from './secure-file.js';
import { lineOf, parseYamlSource, sourceError, type SourceProblem, type YamlSource } from './yaml-source.js';

/** What a setting is and what it is when the file does not set it. */
export interface ConfigKeySpec {
  readonly type: 'boolean';
  readonly default: boolean;
  readonly description: string;
}

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
} as const satisfies Readonly<Record<string, ConfigKeySpec>>;

/** A known setting's dotted name. */
export type ConfigKey = keyof typeof CONFIG_KEYS;

/** The validated, frozen settings, defaults filled in. */
export interface CmdopConfig {
  readonly permissions: {
    readonly enabled: boolean;
    readonly self_bypass: boolean;
  };
}

/** One setting's effective value and where it came from. */
export interface ConfigValue {
  readonly key: ConfigKey;
  readonly value: boolean;
  /** `file` when config.yaml sets it, `default` otherwise. */
  readonly source: 'file' | 'default';
}

/** What {@link setConfigValue} did. */
export interface ConfigChange {
  readonly key: ConfigKey;
  readonly value: boolean;
  readonly previous: boolean;
  /** Whether the effective value changed. */
  readonly changed: boolean;
}

const KNOWN_KEYS = Object.keys(CONFIG_KEYS) as ConfigKey[];
const BOOLEAN_WORDS: Readonly<Record<string, boolean>> = { true: true, false: false, yes: true, no: false, on: true, off: false, '1': true, '0': false };
const valueSchema = z.boolean();

interface ConfigEntry {
  readonly value: boolean;
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
  const value = (key: ConfigKey): boolean => state.entries.get(key)?.value ?? CONFIG_KEYS[key].default;
  return Object.freeze({
    permissions: Object.freeze({ enabled: value('permissions.enabled'), self_bypass: value('permissions.self_bypass') }),
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
  let previous: boolean | undefined;
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
      const parsed = valueSchema.safeParse(js);
      if (!parsed.success) {
        problems.push({
          line: lineOf(source, value) ?? line,
          message: `${dotted} must be true or false, not ${describeValue(js)}`,
          hint: `Write ${dotted.split('.').pop() ?? dotted}: true or false (no quotes).`,
        });
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
      entries.set(dotted, { value: parsed.data, line, flat: prefix === '' && name.includes('.') });
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

function parseValue(key: ConfigKey, raw: string): boolean {
  const word = raw.trim().toLowerCase();
  if (Object.hasOwn(BOOLEAN_WORDS, word)) return BOOLEAN_WORDS[word] === true;
  throw new CmdopError('invalid_input', `${key} takes true or false, not ${JSON.stringify(raw)}`, {
    hint: `Accepted values: true, false (also yes/no, on/off, 1/0). Example: cmdop config set ${key} false`,
    details: { key, value: raw, accepted: Object.keys(BOOLEAN_WORDS) },
  });
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
