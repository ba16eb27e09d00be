import { readFile, readdir, stat } from 'node:fs/promises';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { configPath } from '../../src/config/cmdop-home.js';
import { CONFIG_KEYS, getConfigValue, listConfigValues, loadConfig, setConfigValue } from '../../src/config/config-file.js';
import { createTempHome, failure, putFile, removeTempHome } from './temp-home.js';

let home: string;
let file: string;
beforeEach(async () => {
  home = await createTempHome();
  file = configPath(home);
});
afterEach(async () => {
  await removeTempHome(home);
});

async function put(text: string, mode = 0o600): Promise<void> {
  await putFile(file, text, mode);
}

describe('reading config.yaml', () => {
  it('gives the defaults for a missing or empty file', async () => {
    expect(await loadConfig(home)).toEqual(withDefaults(true, true));
    expect(await getConfigValue(home, 'permissions.enabled')).toEqual({ key: 'permissions.enabled', value: true, source: 'default' });
    await put('# nothing set yet\n');
    expect(await loadConfig(home)).toEqual(withDefaults(true, true));
    expect(Object.keys(CONFIG_KEYS)).toEqual(['permissions.enabled', 'permissions.self_bypass', 'permissions.ask_timeout', 'agent.listen', 'agent.announce_interval']);
  });

  it('reads nested keys and the literal dotted form', async () => {
    await put('permissions:\n  self_bypass: false\n');
    expect(await loadConfig(home)).toEqual(withDefaults(true, false));
    await put('permissions.enabled: false\n');
    expect(await listConfigValues(home)).toEqual([
      { key: 'permissions.enabled', value: false, source: 'file' },
      { key: 'permissions.self_bypass', value: true, source: 'default' },
      { key: 'permissions.ask_timeout', value: 60, source: 'default' },
      { key: 'agent.listen', value: '127.0.0.1:8470', source: 'default' },
      { key: 'agent.announce_interval', value: 15, source: 'default' },
    ]);
  });

  it.each([
    { name: 'a value that is not a boolean', text: 'permissions:\n  enabled: maybe\n', line: 2, message: 'permissions.enabled must be true or false, not "maybe"' },
    { name: 'a quoted boolean', text: 'permissions:\n  enabled: "false"\n', line: 2, message: 'permissions.enabled must be true or false, not "false"' },
    { name: 'an unknown key', text: 'permissions:\n  enabled: true\n  self_bypas: false\n', line: 3, message: 'unknown setting "permissions.self_bypas"' },
    { name: 'an unknown section', text: '# settings\nlisten: 0.0.0.0\n', line: 2, message: 'unknown setting "listen"' },
    { name: 'a key set twice', text: 'permissions.enabled: true\npermissions:\n  enabled: false\n', line: 3, message: 'permissions.enabled is set twice (first on line 1)' },
    { name: 'a section that is not a mapping', text: 'permissions: true\n', line: 1, message: 'permissions must be a mapping of settings' },
    { name: 'a YAML syntax error', text: 'permissions:\n\tenabled: true\n', line: 2, message: 'YAML syntax error' },
  ])('$name is a config error with its line', async ({ text, line, message }) => {
    await put(text);
    const error = await failure(loadConfig(home));
    expect(error.code).toBe('config');
    expect(error.message).toContain(`${file} line ${line}: ${message}`);
    expect(error.hint).toContain(`Edit line ${line} of ${file}`);
  });

  it('refuses a file others can read', async () => {
    await put('permissions:\n  enabled: false\n', 0o644);
    expect(await failure(loadConfig(home))).toMatchObject({ code: 'config', hint: `Run: chmod 600 ${file}` });
  });
});

describe('the daemon settings', () => {
  it('sets whole numbers and addresses, and reads them back', async () => {
    expect((await setConfigValue(home, 'permissions.ask_timeout', '5')).value).toBe(5);
    expect((await setConfigValue(home, 'agent.listen', '127.0.0.2:0')).value).toBe('127.0.0.2:0');
    expect((await setConfigValue(home, 'agent.listen', '[::1]:8470')).value).toBe('[::1]:8470');
    const config = await loadConfig(home);
    expect(config.permissions.ask_timeout).toBe(5);
    expect(config.agent.listen).toBe('[::1]:8470');
  });

  it.each([
    ['permissions.ask_timeout', '0'],
    ['permissions.ask_timeout', '3601'],
    ['permissions.ask_timeout', '1.5'],
    ['permissions.ask_timeout', 'soon'],
    ['agent.announce_interval', '-1'],
    ['agent.listen', 'localhost'],
    ['agent.listen', '127.0.0.1:70000'],
    ['agent.listen', 'http://127.0.0.1:80'],
  ])('refuses %s = %j and changes nothing', async (key, value) => {
    const error = await failure(setConfigValue(home, key, value));
    expect(error.code).toBe('invalid_input');
    expect(error.message).toContain(key);
    expect(await loadConfig(home)).toEqual(withDefaults(true, true));
  });

  it('a bad value in the file is a configuration error naming its line', async () => {
    await put('permissions:\n  enabled: true\n  ask_timeout: "a minute"\n');
    const error = await failure(loadConfig(home));
    expect(error.code).toBe('config');
    expect(error.message).toMatch(/line 3/);
    expect(error.message).toMatch(/ask_timeout/);
  });
});

describe('setConfigValue', () => {
  it('writes a 0600 file and reads back what it set', async () => {
    expect(await setConfigValue(home, 'permissions.enabled', 'false')).toEqual({
      key: 'permissions.enabled',
      value: false,
      previous: true,
      changed: true,
    });
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await readFile(file, 'utf8')).toBe('permissions:\n  enabled: false\n');
    expect(await getConfigValue(home, 'permissions.enabled')).toEqual({ key: 'permissions.enabled', value: false, source: 'file' });
    expect(await readdir(home)).toEqual(['config.yaml']);
  });

  it.each([
    ['true', true],
    ['FALSE', false],
    ['yes', true],
    ['no', false],
    ['on', true],
    ['off', false],
    ['1', true],
    ['0', false],
  ])('accepts %s', async (raw, value) => {
    expect((await setConfigValue(home, 'permissions.self_bypass', raw)).value).toBe(value);
    expect((await loadConfig(home)).permissions.self_bypass).toBe(value);
  });

  it('keeps comments and the form a key was written in', async () => {
    await put('# operator settings\npermissions.enabled: true # for now\n');
    await setConfigValue(home, 'permissions.enabled', 'false');
    await setConfigValue(home, 'permissions.self_bypass', 'false');
    expect(await readFile(file, 'utf8')).toBe('# operator settings\npermissions.enabled: false # for now\npermissions:\n  self_bypass: false\n');
    expect(await loadConfig(home)).toEqual(withDefaults(false, false));
  });

  it('setting the current value writes nothing', async () => {
    await put('permissions:\n    enabled: false\n');
    const before = await stat(file);
    expect(await setConfigValue(home, 'permissions.enabled', 'off')).toMatchObject({ changed: false });
    expect((await stat(file)).ino).toBe(before.ino);
  });

  it('an unknown key is invalid_input listing the known keys, and changes nothing', async () => {
    for (const attempt of [setConfigValue(home, 'permissions.enable', 'false'), getConfigValue(home, 'listen')]) {
      const error = await failure(attempt);
      expect(error.code).toBe('invalid_input');
      expect(error.hint).toBe('Known settings: permissions.enabled, permissions.self_bypass, permissions.ask_timeout, agent.listen, agent.announce_interval.');
    }
    expect(await readdir(home)).toEqual([]);
  });

  it('a bad value is invalid_input naming the accepted values, and changes nothing', async () => {
    await put('permissions:\n  enabled: true\n');
    const error = await failure(setConfigValue(home, 'permissions.enabled', 'maybe'));
    expect(error).toMatchObject({ code: 'invalid_input', message: 'permissions.enabled takes true or false, not "maybe"' });
    expect(error.hint).toContain('Accepted values: true, false');
    expect(await readFile(file, 'utf8')).toBe('permissions:\n  enabled: true\n');
  });

  it('refuses to change a malformed file, and leaves it as it is', async () => {
    const broken = 'permissions:\n  enabled: true\n  colour: blue\n';
    await put(broken);
    const error = await failure(setConfigValue(home, 'permissions.self_bypass', 'false'));
    expect(error.code).toBe('config');
    expect(error.message).toContain(`${file} line 3: unknown setting "permissions.colour"`);
    expect(await readFile(file, 'utf8')).toBe(broken);
  });
});

/** The whole config with these two permissions settings and every other at its default. */
function withDefaults(enabled: boolean, selfBypass: boolean): unknown {
  return { permissions: { enabled, self_bypass: selfBypass, ask_timeout: 60 }, agent: { listen: '127.0.0.1:8470', announce_interval: 15 } };
}
