import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  auditLogPath,
  configPath,
  ensureCmdopHome,
  logsDir,
  permissionsPath,
  resolveCmdopHome,
  runDir,
} from '../../src/config/cmdop-home.js';
import { CmdopError } from '../../src/errors.js';
import { createTempHome, removeTempHome } from './temp-home.js';

describe('resolveCmdopHome', () => {
  it.each([
    { env: { HOME: '/home/ann' }, expected: '/home/ann/.cmdop' },
    { env: { HOME: '/home/ann', CMDOP_HOME: '' }, expected: '/home/ann/.cmdop' },
    { env: { HOME: '/home/ann', CMDOP_HOME: '/srv/cmdop/' }, expected: '/srv/cmdop' },
    { env: { HOME: '/home/ann', CMDOP_HOME: '/srv/a/../cmdop' }, expected: '/srv/cmdop' },
    { env: { HOME: '/home/ann', CMDOP_HOME: '~/hosts/audi' }, expected: '/home/ann/hosts/audi' },
    { env: { HOME: '/home/ann', CMDOP_HOME: 'rel/dir' }, expected: resolve('rel/dir') },
  ])('$env.CMDOP_HOME → $expected', ({ env, expected }) => {
    expect(resolveCmdopHome(env)).toBe(expected);
  });

  it('reads process.env by default', () => {
    const saved = process.env.CMDOP_HOME;
    process.env.CMDOP_HOME = '/tmp/cmdop-from-env';
    try {
      expect(resolveCmdopHome()).toBe('/tmp/cmdop-from-env');
    } finally {
      if (saved === undefined) delete process.env.CMDOP_HOME;
      else process.env.CMDOP_HOME = saved;
    }
  });
});

describe('ensureCmdopHome', () => {
  let root: string;
  beforeEach(async () => {
    root = await createTempHome();
  });
  afterEach(async () => {
    await removeTempHome(root);
  });

  it('creates the directory and its parents with mode 0700, whatever the umask', async () => {
    const home = join(root, 'a', 'b', '.cmdop');
    const saved = process.umask(0o000);
    try {
      await ensureCmdopHome(home);
    } finally {
      process.umask(saved);
    }
    expect((await stat(home)).mode & 0o777).toBe(0o700);
    await ensureCmdopHome(home); // idempotent
  });

  it('refuses an existing directory others can write to', async () => {
    const home = join(root, 'shared');
    await mkdir(home);
    await chmod(home, 0o777);
    const error = await ensureCmdopHome(home).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(CmdopError);
    expect(error).toMatchObject({ code: 'config', hint: `Run: chmod 700 ${home}` });
    expect((error as CmdopError).message).toContain(home);
  });

  it('refuses a path that is a file', async () => {
    const home = join(root, 'file');
    await writeFile(home, 'x');
    await expect(ensureCmdopHome(home)).rejects.toMatchObject({ code: 'config', message: `${home} is not a directory` });
  });
});

describe('path helpers', () => {
  it('place every file under the home', () => {
    expect(permissionsPath('/h')).toBe('/h/permissions.yaml');
    expect(configPath('/h')).toBe('/h/config.yaml');
    expect(logsDir('/h')).toBe('/h/logs');
    expect(auditLogPath('/h')).toBe('/h/logs/audit.log');
    expect(runDir('/h')).toBe('/h/run');
  });
});
