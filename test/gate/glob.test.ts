import { describe, expect, it } from 'vitest';
import { compileGlob } from '../../src/gate/glob.js';

const home = '/home/alice';
const matches = (glob: string, kind: 'command' | 'path' | 'hostname', target: string): boolean => compileGlob(glob, kind, { home }).regex.test(target);

describe('command globs', () => {
  it.each([
    ['git *', 'git commit -m fix a/b', true],
    ['git *', 'git', true],
    ['git *', 'gitk', false],
    ['git *', 'xgit status', false],
    ['rm *', 'rm -rf /tmp/x', true],
    ['git status', 'git status', true],
    ['git status', 'git status --short', false],
    ['git s?atus', 'git status', true],
    ['git [sd]*', 'git diff', true],
    ['git [!sd]*', 'git diff', false],
    ['npm run *', 'npm run build', true],
    ['npm run *', 'npm install', false],
    ['ls \\*', 'ls *', true],
    ['ls \\*', 'ls x', false],
  ])('%j matches %j: %s', (glob, target, expected) => {
    expect(matches(glob, 'command', target)).toBe(expected);
  });

  it('indexes by program when the glob spells it', () => {
    expect(compileGlob('git *', 'command', { home }).anchor).toEqual(['git']);
    expect(compileGlob('git status', 'command', { home }).anchor).toEqual(['git']);
    expect(compileGlob('gi*', 'command', { home }).anchor).toEqual([]);
  });
});

describe('path globs', () => {
  it.each([
    ['/srv/**', '/srv', true],
    ['/srv/**', '/srv/app/.env.example', true],
    ['/srv/**', '/srvx/a', false],
    ['/srv/*', '/srv/a', true],
    ['/srv/*', '/srv/a/b', false],
    ['/srv/*', '/srv/.hidden', true],
    ['/srv/**/*.log', '/srv/a/b/c.log', true],
    ['/srv/**/*.log', '/srv/c.log', true],
    ['~/projects/**', '/home/alice/projects/x/y', true],
    ['~/projects/**', '/home/bob/projects/x', false],
    ['.env*', '/home/alice/app/.env.local', true],
    ['.env*', '/home/alice/app/x.env', false],
    ['src/*.ts', '/home/alice/app/src/a.ts', true],
    ['/srv//app/./x', '/srv/app/x', true],
    ['/tmp/?', '/tmp/a', true],
    ['/tmp/?', '/tmp/ab', false],
    ['/tmp/[ab]', '/tmp/b', true],
    ['/', '/', true],
    ['/**', '/anything/at/all', true],
  ])('%j matches %j: %s', (glob, target, expected) => {
    expect(matches(glob, 'path', target)).toBe(expected);
  });

  it('anchors on literal leading segments', () => {
    expect(compileGlob('/srv/app/**', 'path', { home }).anchor).toEqual(['srv', 'app']);
    expect(compileGlob('~/x/*.md', 'path', { home }).anchor).toEqual(['home', 'alice', 'x']);
    expect(compileGlob('.env*', 'path', { home }).anchor).toEqual([]);
  });
});

describe('host name globs', () => {
  it.each([
    ['prod-*', 'PROD-web-1', true],
    ['VPS-Audi', 'vps-audi', true],
    ['prod-*', 'staging-1', false],
    ['*.example.com', 'a.example.com', true],
  ])('%j matches %j: %s', (glob, target, expected) => {
    expect(matches(glob, 'hostname', target)).toBe(expected);
  });
});
