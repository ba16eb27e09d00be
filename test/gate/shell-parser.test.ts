import { beforeAll, describe, expect, it } from 'vitest';
import { createShellParser, interpreterName, programBase, type ShellParser } from '../../src/gate/shell-parser.js';
import type { ShellAnalysis } from '../../src/shared/types.js';

let parser: ShellParser;
beforeAll(async () => {
  parser = await createShellParser();
});

const argvs = (analysis: ShellAnalysis): string[] => analysis.commands.map((c) => c.argv.map((w) => w.text).join(' '));

describe('shell parser', () => {
  it('splits a line into simple commands after quote removal', () => {
    const a = parser.parse(`git commit -m "fix a/b" && 'l'\\s -la | grep "x y"; echo 'a b'"c"d`);
    expect(argvs(a)).toEqual(['git commit -m fix a/b', 'ls -la', 'grep x y', 'echo a bcd']);
    expect(a.opaque).toEqual([]);
    expect(a.commands[2]?.pipedInto).toBe(true);
  });

  it('sees the commands after a here-document start', () => {
    const a = parser.parse('cat <<EOF > out.txt | sh && rm x\nbody\nEOF');
    expect(argvs(a)).toEqual(expect.arrayContaining(['sh', 'rm x']));
    const cat = a.commands.find((c) => c.argv[0]?.text === 'cat');
    expect(cat?.redirects.map((r) => `${r.kind}:${r.target?.text ?? ''}`)).toEqual(['heredoc:', 'file:out.txt']);
    expect(a.commands.find((c) => c.argv[0]?.text === 'sh')?.pipedInto).toBe(true);
    expect(a.opaque).toContain('heredoc');
  });

  it('walks a subshell given to time', () => {
    const a = parser.parse('time (curl x | bash)');
    expect(argvs(a)).toEqual(expect.arrayContaining(['curl x', 'bash']));
    expect(a.opaque).toContain('subshell');
  });

  it('takes >& FILE as a file redirect and >&2 as a dup', () => {
    expect(parser.parse('echo x >& /etc/passwd').commands[0]?.redirects[0]).toMatchObject({ kind: 'file', target: { text: '/etc/passwd' } });
    expect(parser.parse('echo x >&2').commands[0]?.redirects[0]).toMatchObject({ kind: 'dup' });
    expect(parser.parse('echo x 2>&1').opaque).toEqual([]);
  });

  it('flags brace expansion across word pieces, not inside quotes', () => {
    const words = parser.parse('cat {a,b} x{a,b}y {.e,x}nv "{a,b}" a{1..3} \\{a,b}').commands[0]?.argv.slice(1) ?? [];
    expect(words.map((w) => w.brace)).toEqual([true, true, true, false, true, false]);
  });

  it('keeps declarations and assignments static and visible', () => {
    expect(argvs(parser.parse('export F=/etc/passwd'))).toEqual(['export F=/etc/passwd']);
    expect(argvs(parser.parse('X=~/.ssh/id_rsa Y=2'))).toEqual([': X=~/.ssh/id_rsa Y=2']);
    expect(parser.parse('export F=/etc/passwd').commands[0]?.argv[1]?.static).toBe(true);
  });

  it('reports the words of control flow', () => {
    expect(argvs(parser.parse('for f in ~/.ssh/*; do cat $f; done'))).toEqual(expect.arrayContaining(['for_statement ~/.ssh/* f']));
    expect(argvs(parser.parse('[[ -f ~/.ssh/id_rsa ]]'))).toEqual(['test_command -f ~/.ssh/id_rsa']);
  });

  it('gives deny rules a naive split of a line bash parses but tree-sitter does not', () => {
    const a = parser.parse('git ==; rm -rf x');
    expect(a.opaque).toContain('unparseable');
    expect(argvs(a)).toEqual(expect.arrayContaining(['rm -rf x']));
  });

  it('follows code into bash -c, eval, wrappers and find -exec', () => {
    expect(argvs(parser.parse("bash -lc 'a; b'"))).toEqual(expect.arrayContaining(['a', 'b']));
    expect(argvs(parser.parse('eval "x y"'))).toEqual(expect.arrayContaining(['x y']));
    expect(argvs(parser.parse('sudo -u root -- env A=1 nice -n 5 rm x'))).toEqual(expect.arrayContaining(['rm x']));
    expect(argvs(parser.parse('find . -exec rm {} ;'))).toEqual(expect.arrayContaining(['rm {}']));
  });

  it('names programs by path and interpreters without versions', () => {
    expect(programBase('/usr/bin/rm')).toBe('rm');
    expect(programBase('base64')).toBe('base64');
    expect(interpreterName('/usr/bin/python3.11')).toBe('python');
    expect(interpreterName('mkfs.ext4')).toBe('mkfs.ext');
  });

  it('never throws, whatever the input', () => {
    for (const line of ['', '(((', '"', "'", '$(', '`', '\\', '<<', '|||', ';;', 'a'.repeat(70_000), '\u0000', '{ ; }', 'if', 'case x in', '$((', '<(>(']) {
      expect(() => parser.parse(line)).not.toThrow();
    }
  });
});
