import { describe, expect, it } from 'vitest';
import { CmdopError } from '../../src/errors.js';
import { escapeGlob, exactRule, parseRule } from '../../src/gate/rule-grammar.js';

describe('parseRule', () => {
  it.each([
    ['execute_command(git *)', { tool: 'execute_command', operation: undefined, glob: 'git *', negated: false }],
    ['read_file', { tool: 'read_file', operation: undefined, glob: undefined, negated: false }],
    ['connect(exec:prod-*)', { tool: 'connect', operation: 'exec', glob: 'prod-*', negated: false }],
    ['connect(exec)', { tool: 'connect', operation: 'exec', glob: undefined, negated: false }],
    ['connect(db-*)', { tool: 'connect', operation: undefined, glob: 'db-*', negated: false }],
    ['ssh_session(open:*.example.com)', { tool: 'ssh_session', operation: 'open', glob: '*.example.com', negated: false }],
    ['execute_command(!git *)', { tool: 'execute_command', operation: undefined, glob: 'git *', negated: true }],
    ['write_file(/srv/**)', { tool: 'write_file', operation: undefined, glob: '/srv/**', negated: false }],
    ['  write_file(.env*)  ', { tool: 'write_file', operation: undefined, glob: '.env*', negated: false }],
    ['execute_command(echo (a) b)', { tool: 'execute_command', operation: undefined, glob: 'echo (a) b', negated: false }],
    ['execute_command(ls [abc]*)', { tool: 'execute_command', operation: undefined, glob: 'ls [abc]*', negated: false }],
  ])('parses %s', (text, expected) => {
    expect(parseRule(text)).toMatchObject({ ...expected, text: text.trim() });
  });

  it.each([
    ['execute_command(git *', 'missing ")"'],
    ['', 'empty'],
    ['exec_command(git *)', 'unknown tool "exec_command"'],
    ['execute_command ()', 'space between the tool name'],
    ['execute_command()', 'body between "(" and ")" is empty'],
    ['execute_command( git *)', 'starts or ends with a space'],
    ['connect(run:prod-*)', 'unknown operation "run"'],
    ['connect(exec:)', 'nothing after "exec:"'],
    ['execute_command(!)', '"!" with no glob'],
    ['read_file(/srv/[abc)', 'unclosed "["'],
    ['read_file(/srv/x\\)', 'lone "\\"'],
    ['read_file)', 'without a matching "("'],
    ['read_file(/a\nb)', 'control character'],
  ])('refuses %j and says what is wrong', (text, problem) => {
    let thrown: unknown;
    try {
      parseRule(text);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(CmdopError);
    const error = thrown as CmdopError;
    expect(error.code).toBe('invalid_input');
    expect(error.exitCode).toBe(2);
    expect(error.message).toContain(problem);
    expect(error.hint).toBeTruthy();
  });

  it('builds exact rules that parse back to a literal glob', () => {
    const rule = exactRule('execute_command', 'ls *.txt [x]');
    expect(rule).toBe('execute_command(ls \\*.txt \\[x\\])');
    expect(parseRule(rule).glob).toBe(escapeGlob('ls *.txt [x]'));
    expect(parseRule(exactRule('execute_command', '!x')).negated).toBe(false);
    expect(exactRule('connect', 'db-1', 'exec')).toBe('connect(exec:db-1)');
  });
});
