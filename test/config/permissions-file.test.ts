import { readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { permissionsPath } from '../../src/config/cmdop-home.js';
import {
  EMPTY_PERMISSIONS,
  addRule,
  createPermissionsTest,
  loadPermissions,
  normalisePermissions,
  parsePermissions,
  parseTestRequest,
  revokeRule,
  serialisePermissions,
  setMode,
  updatePermissions,
  type PermissionsDoc,
} from '../../src/config/permissions-file.js';
import { CmdopError } from '../../src/errors.js';
import { createTempHome, failure, putFile, removeTempHome } from './temp-home.js';

const REFERENCE = `# rules for vps-audi
version: 1
mode: default
allow:
  - execute_command(git *)   # trusted repo
  - read_file
deny:
  - execute_command(rm *)
  - write_file(.env*)
ask:
  - write_file
reasons:
  "execute_command(git *)": "trusted repo"
created_at:
  "execute_command(git *)": "2026-04-23T10:00:00Z"
tests:
  - request: execute_command(git status)
    expect: allow
  - request: { tool: connect, operation: exec, target: prod-1 }
    expect: ask
`;

const NOW = new Date('2026-05-01T12:34:56.789Z');

let home: string;
let file: string;
beforeEach(async () => {
  home = await createTempHome();
  file = permissionsPath(home);
});
afterEach(async () => {
  await removeTempHome(home);
});

async function put(text: string, mode = 0o600): Promise<void> {
  await putFile(file, text, mode);
}

function syncFailure(fn: () => unknown): CmdopError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CmdopError);
    return error as CmdopError;
  }
  throw new Error('expected a CmdopError');
}

describe('loadPermissions', () => {
  it('gives the defaults for a missing file, and creates nothing', async () => {
    expect(await loadPermissions(home)).toBe(EMPTY_PERMISSIONS);
    expect(EMPTY_PERMISSIONS).toMatchObject({ version: 1, mode: 'default', allow: [], deny: [], ask: [], tests: [] });
    expect(await readdir(home)).toEqual([]);
  });

  it('reads the reference shape into a frozen document', async () => {
    await put(REFERENCE);
    const doc = await loadPermissions(home);
    expect(doc).toEqual({
      version: 1,
      mode: 'default',
      allow: ['execute_command(git *)', 'read_file'],
      deny: ['execute_command(rm *)', 'write_file(.env*)'],
      ask: ['write_file'],
      reasons: { 'execute_command(git *)': 'trusted repo' },
      created_at: { 'execute_command(git *)': '2026-04-23T10:00:00Z' },
      tests: [
        {
          written: 'execute_command(git status)',
          request: { tool: 'execute_command', target: 'git status' },
          expect: 'allow',
          line: 17,
        },
        {
          written: { tool: 'connect', operation: 'exec', target: 'prod-1' },
          request: { tool: 'connect', operation: 'exec', target: 'prod-1' },
          expect: 'ask',
          line: 19,
        },
      ],
    });
    expect(Object.isFrozen(doc)).toBe(true);
    expect(Object.isFrozen(doc.allow)).toBe(true);
    expect(Object.isFrozen(doc.reasons)).toBe(true);
    expect(Object.isFrozen(doc.tests[1]?.request)).toBe(true);
  });

  it('reads empty sections as empty', async () => {
    await put('version: 1\nallow:\ndeny: []\nreasons:\n');
    expect(await loadPermissions(home)).toEqual(EMPTY_PERMISSIONS);
  });

  it('refuses a file others can read, with the chmod fix', async () => {
    await put(REFERENCE, 0o644);
    const error = await failure(loadPermissions(home));
    expect(error.code).toBe('config');
    expect(error.hint).toBe(`Run: chmod 600 ${file}`);
  });
});

describe('hand-edited mistakes are reported with file, line, culprit and fix', () => {
  it.each([
    {
      name: 'a malformed rule',
      text: 'version: 1\nmode: strict\nallow:\n  - read_file\ndeny:\n  - execute_command(git *\n',
      line: 6,
      message: 'deny rule "execute_command(git *": missing ")" at the end (column 22)',
      hint: 'Close the body: execute_command(git *)',
    },
    {
      name: 'an unknown tool',
      text: 'version: 1\nallow:\n  - run_command(ls)\n',
      line: 3,
      message: 'allow rule "run_command(ls)": unknown tool "run_command"',
      hint: 'Known tools:',
    },
    {
      name: 'a rule cut short by a YAML comment',
      text: 'version: 1\nallow:\n  - execute_command(echo #1)\n',
      line: 3,
      message: 'allow rule "execute_command(echo": missing ")"',
      hint: 'quote the rule',
    },
    {
      name: 'an unquoted rule with ": " (a mapping)',
      text: 'version: 1\nask:\n  - read_file\n  - execute_command(echo a: b)\n',
      line: 4,
      message: 'ask[1] must be a string, not a mapping',
      hint: 'put it in quotes',
    },
    {
      name: 'a list written as a string',
      text: 'version: 1\nallow: read_file\n',
      line: 2,
      message: 'allow must be a list, not a string',
      hint: 'one per line',
    },
    {
      name: 'a wrong mode',
      text: 'version: 1\n\nmode: lax\n',
      line: 3,
      message: 'mode is "lax"; it must be one of default, strict, bypass',
      hint: 'Modes: default, strict, bypass.',
    },
    {
      name: 'an unknown top-level key',
      text: 'version: 1\nmode: default\nalow:\n  - read_file\n',
      line: 3,
      message: 'unknown key "alow"',
      hint: 'Known keys: version, mode, allow, deny, ask, reasons, created_at, tests.',
    },
    { name: 'an unsupported version', text: 'version: 2\n', line: 1, message: 'version 2 is not supported; this cmdop reads version 1', hint: 'version: 1' },
    { name: 'no version', text: 'mode: strict\n', line: 1, message: 'there is no "version:"', hint: 'Add "version: 1"' },
    {
      name: 'a rule listed twice',
      text: 'version: 1\nallow:\n  - read_file\n  - list_dir\n  - read_file\n',
      line: 5,
      message: 'allow rule "read_file" is listed twice',
      hint: 'Remove one',
    },
    {
      name: 'a rule in two lists',
      text: 'version: 1\nallow: [read_file]\ndeny:\n  - read_file\n',
      line: 4,
      message: 'rule "read_file" is in both allow and deny',
      hint: 'belongs to one list',
    },
    {
      name: 'a reason that is not text',
      text: 'version: 1\nallow: [read_file]\nreasons:\n  read_file: [a, b]\n',
      line: 4,
      message: 'reasons.read_file must be a string, not a list',
      hint: undefined,
    },
    {
      name: 'a bad created_at time',
      text: 'version: 1\nallow: [read_file]\ncreated_at:\n  "read_file": yesterday\n',
      line: 4,
      message: 'created_at.read_file: must be an ISO 8601 time',
      hint: undefined,
    },
    {
      name: 'a test with an unknown tool',
      text: 'version: 1\ntests:\n  - request: execute_command(ls)\n    expect: allow\n  - request: shell(ls)\n    expect: deny\n',
      line: 5,
      message: 'test request "shell(ls)": unknown tool "shell"',
      hint: 'Known tools:',
    },
    {
      name: 'a test with a bad expectation',
      text: 'version: 1\ntests:\n  - request: read_file(/x)\n    expect: yes\n',
      line: 4,
      message: 'tests[0].expect is "yes"; it must be one of allow, deny, ask',
      hint: 'Each test is a mapping',
    },
    {
      name: 'a test with an unknown operation',
      text: 'version: 1\ntests:\n  - request: { tool: connect, operation: scp, target: prod }\n    expect: deny\n',
      line: 3,
      message: 'unknown operation "scp" for connect',
      hint: 'Operations of connect: exec, shell, copy.',
    },
    {
      name: 'a YAML syntax error',
      text: 'version: 1\nallow:\n  - read_file\n bad\n',
      line: 4,
      message: 'YAML syntax error',
      hint: 'indentation',
    },
    { name: 'a duplicate key', text: 'version: 1\nallow: []\nallow: []\n', line: 3, message: 'Map keys must be unique', hint: 'Each key may appear once' },
    { name: 'not a mapping', text: '- read_file\n', line: 1, message: 'the file must be a mapping', hint: 'version: 1' },
  ])('$name', async ({ text, line, message, hint }) => {
    await put(text);
    const error = await failure(loadPermissions(home));
    expect(error.code).toBe('config');
    expect(error.message).toContain(`${file} line ${line}: `);
    expect(error.message).toContain(message);
    expect(error.details).toMatchObject({ path: file, line });
    if (hint !== undefined) expect(error.hint).toContain(hint);
    expect(error.hint).toContain(`Edit line ${line} of ${file}`);
  });

  it('an empty file is an error, not silently the defaults', async () => {
    await put('# nothing here\n');
    const error = await failure(loadPermissions(home));
    expect(error).toMatchObject({ code: 'config', message: `${file}: the file is empty` });
  });

  it('counts further problems', async () => {
    await put('version: 1\nallow:\n  - nope\n  - also_nope\n');
    const error = await failure(loadPermissions(home));
    expect(error.message).toMatch(/line 3: .*\(and 1 more problem\)$/);
    expect(error.details?.problems).toHaveLength(2);
  });
});

describe('serialisePermissions', () => {
  it('round-trips the reference shape, keeping comments and tests as written', () => {
    const doc = parsePermissions(REFERENCE, file);
    const text = serialisePermissions(doc, REFERENCE);
    expect(parsePermissions(text, file)).toEqual(doc);
    expect(text).toContain('# rules for vps-audi');
    expect(text).toContain('# trusted repo');
    expect(text).toContain('  - request: { tool: connect, operation: exec, target: prod-1 }');
  });

  it('writes a stable order without previous text', () => {
    const doc = parsePermissions('tests:\n  - request: read_file(/a)\n    expect: allow\nask: [write_file]\nmode: strict\nversion: 1\n', file);
    expect(serialisePermissions(doc)).toBe(
      [
        'version: 1',
        'mode: strict',
        'allow: []',
        'deny: []',
        'ask:',
        '  - write_file',
        'reasons: {}',
        'created_at: {}',
        'tests:',
        '  - request: read_file(/a)',
        '    expect: allow',
        '',
      ].join('\n'),
    );
  });

  it('quotes what YAML would misread', () => {
    const doc = addRule(EMPTY_PERMISSIONS, 'allow', 'execute_command(echo a: b #c)', { now: NOW, reason: 'a: b' }).doc;
    const text = serialisePermissions(doc);
    expect(parsePermissions(text, file)).toEqual(doc);
  });
});

describe('addRule / revokeRule / setMode', () => {
  it('adds a rule with its time (seconds) and reason', () => {
    const result = addRule(EMPTY_PERMISSIONS, 'allow', '  execute_command(git *) ', { now: NOW, reason: ' trusted repo ' });
    expect(result.status).toBe('added');
    expect(result.rule).toBe('execute_command(git *)');
    expect(result.doc.allow).toEqual(['execute_command(git *)']);
    expect(result.doc.reasons).toEqual({ 'execute_command(git *)': 'trusted repo' });
    expect(result.doc.created_at).toEqual({ 'execute_command(git *)': '2026-05-01T12:34:56Z' });
    expect(Object.isFrozen(result.doc.allow)).toBe(true);
    expect(EMPTY_PERMISSIONS.allow).toEqual([]);
  });

  it('adding a rule already in the list is a no-op that says so, or updates the reason', () => {
    const once = addRule(EMPTY_PERMISSIONS, 'deny', 'write_file(.env*)', { now: NOW }).doc;
    const again = addRule(once, 'deny', 'write_file(.env*)', { now: new Date() });
    expect(again.status).toBe('unchanged');
    expect(again.doc).toBe(once);
    const reasoned = addRule(once, 'deny', 'write_file(.env*)', { now: new Date(), reason: 'secrets' });
    expect(reasoned.status).toBe('reason_updated');
    expect(reasoned.doc.reasons).toEqual({ 'write_file(.env*)': 'secrets' });
    expect(reasoned.doc.created_at).toEqual(once.created_at);
  });

  it('refuses a rule that is in another list', () => {
    const doc = addRule(EMPTY_PERMISSIONS, 'deny', 'read_file', { now: NOW }).doc;
    const error = syncFailure(() => addRule(doc, 'allow', 'read_file', { now: NOW }));
    expect(error).toMatchObject({ code: 'invalid_input', message: 'rule "read_file" is already in deny; a rule can be in one list only' });
    expect(error.hint).toContain("cmdop permissions revoke 'read_file'");
  });

  it('refuses a malformed rule or reason', () => {
    expect(syncFailure(() => addRule(EMPTY_PERMISSIONS, 'allow', 'read_file(', { now: NOW })).code).toBe('invalid_input');
    expect(syncFailure(() => addRule(EMPTY_PERMISSIONS, 'allow', 'read_file', { now: NOW, reason: 'a\nb' })).code).toBe('invalid_input');
    expect(syncFailure(() => addRule(EMPTY_PERMISSIONS, 'allow', 'read_file', { now: NOW, reason: '  ' })).code).toBe('invalid_input');
  });

  it('revokes a rule with its reason and time; an absent rule is not_found', () => {
    const doc = addRule(EMPTY_PERMISSIONS, 'ask', 'execute_command(git push *)', { now: NOW, reason: 'careful' }).doc;
    const result = revokeRule(doc, 'execute_command(git push *)');
    expect(result.removedFrom).toEqual(['ask']);
    expect(result.doc).toEqual(EMPTY_PERMISSIONS);
    const error = syncFailure(() => revokeRule(doc, 'execute_command(git *)'));
    expect(error).toMatchObject({ code: 'not_found', message: 'rule "execute_command(git *)" is not in allow, deny or ask' });
    expect(error.hint).toContain('ask: execute_command(git push *)');
  });

  it('sets the mode; an unknown mode is invalid_input', () => {
    const result = setMode(EMPTY_PERMISSIONS, 'strict');
    expect(result).toMatchObject({ mode: 'strict', previous: 'default', changed: true });
    expect(setMode(result.doc, 'strict').changed).toBe(false);
    expect(syncFailure(() => setMode(EMPTY_PERMISSIONS, 'lax'))).toMatchObject({ code: 'invalid_input', hint: 'Modes: default, strict, bypass.' });
  });

  it('parses test requests the way tests: are written', () => {
    expect(parseTestRequest('execute_command(git commit -m "a:b")')).toEqual({ tool: 'execute_command', target: 'git commit -m "a:b"' });
    expect(parseTestRequest('connect(exec:prod-*)')).toEqual({ tool: 'connect', operation: 'exec', target: 'prod-*' });
    expect(parseTestRequest('connect(prod-1)')).toEqual({ tool: 'connect', target: 'prod-1' });
    expect(syncFailure(() => parseTestRequest('read_file')).code).toBe('invalid_input');
    expect(syncFailure(() => parseTestRequest('read_file()')).code).toBe('invalid_input');
    expect(createPermissionsTest({ tool: 'ssh_session', operation: 'open', target: 'db' }, 'deny')).toMatchObject({
      request: { tool: 'ssh_session', operation: 'open', target: 'db' },
      line: undefined,
    });
  });

  it('normalisePermissions refuses a document that would not load', () => {
    const bad = { ...EMPTY_PERMISSIONS, allow: ['read_file', 'read_file'] } satisfies PermissionsDoc;
    expect(syncFailure(() => normalisePermissions(bad))).toMatchObject({ code: 'invalid_input', message: 'allow rule "read_file" is listed twice' });
  });
});

describe('updatePermissions', () => {
  it('creates the file with mode 0600 and returns what is on disk', async () => {
    const doc = await updatePermissions(home, (d) => addRule(d, 'allow', 'read_file', { now: NOW }).doc);
    expect(doc.allow).toEqual(['read_file']);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect(await loadPermissions(home)).toEqual(doc);
  });

  it('keeps comments, tests and unrelated entries of a hand-written file', async () => {
    await put(REFERENCE);
    await updatePermissions(home, (d) => addRule(d, 'deny', 'write_file(/etc/*)', { now: NOW, reason: 'system' }).doc);
    const text = await readFile(file, 'utf8');
    expect(text).toContain('# rules for vps-audi');
    expect(text).toContain('execute_command(git *) # trusted repo');
    expect(text).toContain('  - request: { tool: connect, operation: exec, target: prod-1 }');
    const doc = await loadPermissions(home);
    expect(doc.deny).toEqual(['execute_command(rm *)', 'write_file(.env*)', 'write_file(/etc/*)']);
    expect(doc.tests).toHaveLength(2);
  });

  it('writes nothing when the mutation changes nothing', async () => {
    await put(REFERENCE);
    const before = await stat(file);
    await updatePermissions(home, (d) => addRule(d, 'allow', 'read_file', { now: NOW }).doc, {
      validate: () => {
        throw new Error('validate must not run for a no-op');
      },
    });
    const after = await stat(file);
    expect(after.ino).toBe(before.ino);
    expect(await readFile(file, 'utf8')).toBe(REFERENCE);
    await updatePermissions(home, (d) => d);
    expect(await readdir(home)).toEqual(['permissions.yaml']);
  });

  it('a validate hook that refuses leaves the file byte-for-byte unchanged', async () => {
    await put(REFERENCE);
    const refusal = new CmdopError('invalid_input', 'test 1 (execute_command(git status)) would now be deny');
    let seen: PermissionsDoc | undefined;
    const error = await failure(
      updatePermissions(home, (d) => revokeRule(d, 'execute_command(git *)').doc, {
        validate: (doc) => {
          seen = doc;
          throw refusal;
        },
      }),
    );
    expect(error).toBe(refusal);
    expect(seen?.allow).toEqual(['read_file']);
    expect(seen?.tests[0]?.line).toBe(17);
    expect(await readFile(file, 'utf8')).toBe(REFERENCE);
    expect(await readdir(home)).toEqual(['permissions.yaml']);
  });

  it('an async validate hook that passes lets the change land', async () => {
    await put(REFERENCE);
    const doc = await updatePermissions(home, (d) => setMode(d, 'strict').doc, {
      validate: async (proposed) => {
        await Promise.resolve();
        expect(proposed.mode).toBe('strict');
      },
    });
    expect(doc.mode).toBe('strict');
    expect((await loadPermissions(home)).mode).toBe('strict');
  });

  it('a failing mutation, a broken file or a loose file change nothing', async () => {
    await put(REFERENCE);
    expect((await failure(updatePermissions(home, (d) => addRule(d, 'allow', 'execute_command(rm *)', { now: NOW }).doc))).code).toBe(
      'invalid_input',
    );
    expect((await failure(updatePermissions(home, (d) => ({ ...d, ask: ['bogus'] })))).code).toBe('invalid_input');
    expect(await readFile(file, 'utf8')).toBe(REFERENCE);

    const broken = REFERENCE.replace('  - write_file\n', '  - write_file(\n');
    await put(broken);
    const error = await failure(updatePermissions(home, (d) => setMode(d, 'strict').doc));
    expect(error.code).toBe('config');
    expect(error.message).toContain(`${file} line 11: ask rule "write_file("`);
    expect(await readFile(file, 'utf8')).toBe(broken);

    await put(REFERENCE, 0o640);
    expect((await failure(updatePermissions(home, (d) => setMode(d, 'strict').doc))).hint).toBe(`Run: chmod 600 ${file}`);
    expect(await readFile(file, 'utf8')).toBe(REFERENCE);
  });

  it('ignores temp files left by a crashed writer, and removes them on the next write', async () => {
    await put(REFERENCE);
    const leftover = join(home, '.permissions.yaml.tmp-99999-deadbeef0000');
    await writeFile(leftover, 'version: 1\nallow: [half', { mode: 0o600 });
    expect((await loadPermissions(home)).allow).toHaveLength(2);
    await updatePermissions(home, (d) => setMode(d, 'bypass').doc);
    expect(await readdir(home)).toEqual(['permissions.yaml']);
  });
});
