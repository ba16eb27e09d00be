/**
 * The floor's regression corpus (floor/corpus): every input must stay denied by the floor,
 * through the real gate at its most permissive — mode bypass with every tool allowed — and
 * again with the gate switched off (`permissions.enabled: false`), which lifts rules and
 * modes but never the floor (DESIGN.md §4.1).
 */
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { floorCheckCommand, floorCheckPath } from '../../floor/index.js';
import { normalizePath } from '../../floor/paths.js';
import { createGate, type Gate } from '../../src/gate/gate.js';
import { compilePolicy, type Policy } from '../../src/gate/policy.js';
import type { ToolName } from '../../src/gate/types.js';
import type { FloorContext } from '../../src/shared/types.js';
import { createFsPathResolver } from '../../src/platform/fs-path-resolver.js';

const CORPUS_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'floor', 'corpus');
const PATH_TOOLS: readonly ToolName[] = ['read_file', 'write_file', 'list_dir'];

interface Entry {
  /** `commands.txt:12`, for the test name and failure messages. */
  readonly where: string;
  readonly tools: readonly ToolName[];
  /** The input with placeholders still in it. */
  readonly input: string;
}

/** Reads one corpus file: one input per line, `#` comments and blank lines skipped. */
function readCorpus(file: 'commands.txt' | 'paths.txt'): Entry[] {
  const entries: Entry[] = [];
  readFileSync(join(CORPUS_DIR, file), 'utf8')
    .split('\n')
    .forEach((line, index) => {
      if (line.trim() === '' || line.trimStart().startsWith('#')) return;
      const where = `${file}:${index + 1}`;
      if (file === 'commands.txt') {
        const input = line.startsWith('nl:') ? line.slice(3).replaceAll('\\n', '\n') : line;
        entries.push({ where, tools: ['execute_command'], input });
        return;
      }
      const tool = /^(read_file|write_file|list_dir) (.*)$/.exec(line);
      entries.push(tool === null ? { where, tools: PATH_TOOLS, input: line } : { where, tools: [tool[1] as ToolName], input: tool[2] ?? '' });
    });
  return entries;
}

const commands = readCorpus('commands.txt');
const paths = readCorpus('paths.txt');

let tmp = '';
let home = '';
let cmdopHome = '';
let gate: Gate;
let permissive: Policy;
let disabled: Policy;

/** Creates the fixtures described at the top of floor/corpus/paths.txt. */
function createFixtures(): void {
  // realpath: on macOS the temporary directory is itself behind a symlink.
  tmp = realpathSync(mkdtempSync(join(tmpdir(), 'cmdop-floor-corpus-')));
  home = join(tmp, 'home', 'alice');
  cmdopHome = join(tmp, 'cmdop-home');
  const project = join(tmp, 'project');
  for (const dir of [join(home, '.ssh', 'keys'), cmdopHome, join(project, '.git'), join(project, 'src')]) mkdirSync(dir, { recursive: true });
  writeFileSync(join(project, '.env'), 'TOKEN=secret\n');
  writeFileSync(join(project, '.git', 'config'), '[core]\n');
  writeFileSync(join(project, 'src', 'app.ts'), 'export {};\n');
  writeFileSync(join(home, '.ssh', 'id_rsa'), 'not a key\n');
  writeFileSync(join(home, '.bashrc'), '# bashrc\n');
  const links: [string, string][] = [
    ['etc-link', '/etc'],
    ['link-to-env', join(project, '.env')],
    ['ssh-dir-link', join(home, '.ssh')],
    ['git-link', join(project, '.git')],
    ['cmdop-link', cmdopHome],
    ['innocent.txt', join(home, '.bashrc')],
    ['dangling-etc', '/etc/cmdop-floor-test-missing'],
    ['chain-1', join(tmp, 'chain-2')],
    ['chain-2', '/etc/passwd'],
    ['relative-git', join('project', '.git')],
    ['keychain-link', join(home, 'Library', 'Keychains')],
    ['disk-link', '/dev/sda'],
    ['ssh-sub-link', join(home, '.ssh', 'keys')],
  ];
  for (const [name, target] of links) symlinkSync(target, join(tmp, name));
}

function fill(input: string): string {
  return input.replaceAll('{tmp}', tmp).replaceAll('{home}', home).replaceAll('{cmdop_home}', cmdopHome);
}

beforeAll(async () => {
  createFixtures();
  gate = await createGate({ home, cmdopHome, resolver: createFsPathResolver() });
  const rules = { allow: ['execute_command', 'read_file', 'write_file', 'list_dir'], deny: [], ask: [] };
  permissive = compilePolicy({ mode: 'bypass', enabled: true, rules, home });
  disabled = compilePolicy({ mode: 'bypass', enabled: false, rules, home });
});

afterAll(() => {
  if (tmp !== '') rmSync(tmp, { recursive: true, force: true });
});

describe('floor regression corpus', () => {
  it('holds at least 200 inputs, and only grows', () => {
    expect(commands.length + paths.length).toBeGreaterThanOrEqual(200);
  });

  it('lets an ordinary command and path through the same permissive gate', () => {
    // Without this, a gate that denied everything would pass the corpus.
    expect(gate.evaluate({ tool: 'execute_command', target: 'git status && ls -la src' }, permissive)).toMatchObject({ decision: 'allow' });
    expect(gate.evaluate({ tool: 'read_file', target: join(tmp, 'project', 'src', 'app.ts') }, permissive)).toMatchObject({ decision: 'allow' });
  });

  describe.each([
    ['commands.txt', commands],
    ['paths.txt', paths],
  ] as const)('%s', (_file, entries) => {
    it.each(entries.map((e) => [`${e.where} ${e.input.replaceAll('\n', '⏎')}`, e] as const))('%s', (_name, entry) => {
      const target = fill(entry.input);
      for (const tool of entry.tools) {
        for (const policy of [permissive, disabled]) {
          const decision = gate.evaluate({ tool, target }, policy);
          expect(decision, `${entry.where} ${tool} enabled=${String(policy.enabled)}: ${decision.reason}`).toMatchObject({ decision: 'deny', source: 'floor' });
        }
      }
    });
  });
});

describe('spellings of floor paths (property)', () => {
  const ctx: FloorContext = { home: '/home/alice', cmdopHome: '/srv/cmdop-home' };

  /** Protected places as segments under a root: `/`, the home directory or CMDOP_HOME. */
  const TARGETS: readonly { readonly root: 'abs' | 'home' | 'cmdop'; readonly segments: readonly string[] }[] = [
    { root: 'home', segments: ['.ssh', 'id_rsa'] },
    { root: 'home', segments: ['.ssh'] },
    { root: 'home', segments: ['project', '.env'] },
    { root: 'home', segments: ['project', '.env.local'] },
    { root: 'home', segments: ['.bashrc'] },
    { root: 'home', segments: ['Library', 'Keychains', 'login.keychain-db'] },
    { root: 'home', segments: ['.config', 'cmdop', 'token'] },
    { root: 'home', segments: ['.cmdop', 'permissions.yaml'] },
    { root: 'cmdop', segments: ['permissions.yaml'] },
    { root: 'cmdop', segments: [] },
    { root: 'abs', segments: ['etc', 'passwd'] },
    { root: 'abs', segments: ['etc'] },
    { root: 'abs', segments: ['private', 'etc', 'hosts'] },
    { root: 'abs', segments: ['System', 'Library', 'x'] },
    { root: 'abs', segments: ['srv', 'repo', '.git', 'config'] },
    { root: 'abs', segments: ['dev', 'sda'] },
  ];
  const HOME_SPELLINGS = ['~', '/home/alice', '/home/./alice', '/home/bob/../alice', '//home//alice', '/tmp/../home/alice'];
  const CMDOP_SPELLINGS = ['/srv/cmdop-home', '/srv/./cmdop-home', '/srv/x/../cmdop-home', '//srv/cmdop-home'];
  const NOISE = ['', '', './', '/', 'x/../', 'a/b/../../', './/'];

  /** One target spelled with random `./`, `//`, `x/../`, home form, case and trailing slash. */
  const spelling = fc
    .record({
      target: fc.constantFrom(...TARGETS),
      home: fc.constantFrom(...HOME_SPELLINGS),
      cmdop: fc.constantFrom(...CMDOP_SPELLINGS),
      noise: fc.array(fc.constantFrom(...NOISE), { minLength: 4, maxLength: 4 }),
      upper: fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }),
      trailing: fc.constantFrom('', '/', '/.', '//'),
    })
    .map(({ target, home, cmdop, noise, upper, trailing }) => {
      const root = target.root === 'home' ? home : target.root === 'cmdop' ? cmdop : '';
      const parts = target.segments.map((segment, i) => `${noise[i] ?? ''}${upper[i] === true ? segment.toUpperCase() : segment}`);
      return root + (parts.length === 0 ? '' : `/${parts.join('/')}`) + trailing;
    });

  it('denies every spelling through floorCheckPath', () => {
    fc.assert(
      fc.property(spelling, (path) => {
        expect(floorCheckPath(ctx, normalizePath(path, ctx)), path).toBeDefined();
        expect(floorCheckPath(ctx, path), path).toBeDefined();
      }),
      { numRuns: 500 },
    );
  });

  it('denies every spelling as an argument, quoted or not', () => {
    fc.assert(
      fc.property(spelling, fc.constantFrom('cat X', "cat 'X'", 'cat "X"', 'ls -la X', 'sudo cp x X', 'echo x > X'), (path, template) => {
        const line = template.replace('X', path.startsWith('~') && template.includes("'") ? `~'${path.slice(1)}'` : path);
        expect(floorCheckCommand(ctx, gate.parseCommand(line)), line).toBeDefined();
      }),
      { numRuns: 300 },
    );
  });

  it('denies a glob that keeps a protected dot-name matchable', () => {
    const globbed = fc
      .record({ name: fc.constantFrom('.ssh', '.git', '.env', '.bashrc', '.gnupg'), at: fc.nat(), wildcard: fc.constantFrom('?', '*', '[x]') })
      .map(({ name, at, wildcard }) => {
        // The leading dot stays literal, as bash requires for a match.
        const i = 1 + (at % (name.length - 1));
        const replacement = wildcard === '[x]' ? `[${name.charAt(i)}]` : wildcard;
        return `${name.slice(0, i)}${replacement}${name.slice(i + 1)}`;
      });
    fc.assert(
      fc.property(globbed, (glob) => {
        expect(floorCheckCommand(ctx, gate.parseCommand(`cat ~/${glob}/x ${glob}`)), glob).toBeDefined();
      }),
      { numRuns: 200 },
    );
  });

  it('leaves ordinary paths alone', () => {
    const segment = fc.stringMatching(/^[a-z0-9][a-z0-9_-]{0,7}$/).filter((s) => !s.startsWith('id_'));
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 5 }), (segments) => {
        const path = `/home/alice/work/${segments.join('/')}`;
        expect(floorCheckPath(ctx, path), path).toBeUndefined();
        expect(floorCheckCommand(ctx, gate.parseCommand(`cat ${path} && ls -la ${segments.join('/')}`)), path).toBeUndefined();
      }),
      { numRuns: 300 },
    );
  });
});
