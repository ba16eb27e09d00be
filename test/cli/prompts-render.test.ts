import { describe, expect, it } from 'vitest';
import {
  actionForKey,
  actionForLine,
  applyOperatorEvent,
  describeAnswer,
  formatCountdown,
  renderEventLines,
  renderPendingTable,
  renderPrompt,
  renderScreen,
  sanitize,
  secondsLeft,
} from '../../src/cli/prompts-render.js';
import type { PendingPrompt } from '../../src/transport/local-api.js';

const now = new Date('2030-01-01T00:00:10.000Z');

function prompt(id: string, overrides: Partial<PendingPrompt> = {}): PendingPrompt {
  return {
    id,
    caller_host: 'vps-bmw',
    caller_principal: 'host:vps-bmw',
    tool: 'execute_command',
    operation: null,
    target: 'git push',
    asked_by: 'mode default',
    reason: 'execute_command is dangerous; mode default asks',
    created_at: '2030-01-01T00:00:00.000Z',
    expires_at: '2030-01-01T00:01:00.000Z',
    ...overrides,
  };
}

describe('keys', () => {
  it.each([
    ['a', { decision: 'allow', scope: 'once' }],
    ['s', { decision: 'allow', scope: 'session' }],
    ['g', { decision: 'allow', scope: 'global' }],
    ['d', { decision: 'deny', scope: 'once' }],
    ['A', { decision: 'allow', scope: 'once' }],
  ])('%s answers the current prompt with %o', (key, answer) => {
    expect(actionForKey(key, 'abc')).toEqual({ kind: 'answer', answer: { id: 'abc', ...answer } });
  });

  it.each(['q', 'Q', '\u0003', '\u0004'])('%j quits', (key) => {
    expect(actionForKey(key, 'abc')).toEqual({ kind: 'quit' });
    expect(actionForKey(key, undefined)).toEqual({ kind: 'quit' });
  });

  it.each([
    ['\t', 'next'],
    ['\u001b[B', 'next'],
    ['\u001b[A', 'previous'],
    ['\u001b[Z', 'previous'],
  ])('%j moves to the %s prompt', (key, kind) => {
    expect(actionForKey(key, 'abc')).toEqual({ kind });
  });

  it('answers nothing when nothing waits, and ignores other keys', () => {
    expect(actionForKey('a', undefined)).toBeUndefined();
    expect(actionForKey('x', 'abc')).toBeUndefined();
    expect(actionForKey('\r', 'abc')).toBeUndefined();
  });
});

describe('lines (stdin not a terminal)', () => {
  const waiting = [prompt('aa11'), prompt('aa22'), prompt('bb33')];

  it('answers the oldest prompt without an id', () => {
    expect(actionForLine('s', waiting)).toEqual({ kind: 'answer', answer: { id: 'aa11', decision: 'allow', scope: 'session' } });
    expect(actionForLine('  d  ', waiting)).toEqual({ kind: 'answer', answer: { id: 'aa11', decision: 'deny', scope: 'once' } });
  });

  it('answers the prompt an id or an unambiguous start of one names', () => {
    expect(actionForLine('g bb33', waiting)).toMatchObject({ kind: 'answer', answer: { id: 'bb33', scope: 'global' } });
    expect(actionForLine('a aa2', waiting)).toMatchObject({ kind: 'answer', answer: { id: 'aa22' } });
  });

  it.each([
    ['a aa', /starts 2 prompt ids/],
    ['a zz', /no waiting prompt/],
    ['allow', /not an answer/],
    ['a aa11 extra', /not an answer/],
  ])('%j is refused: %s', (line, message) => {
    const action = actionForLine(line, waiting);
    expect(action.kind).toBe('invalid');
    expect(action.kind === 'invalid' ? action.message : '').toMatch(message);
  });

  it('quits on q, skips blank lines, and says when nothing waits', () => {
    expect(actionForLine('q', waiting)).toEqual({ kind: 'quit' });
    expect(actionForLine('   ', waiting)).toEqual({ kind: 'none' });
    expect(actionForLine('a', [])).toEqual({ kind: 'invalid', message: 'no prompt is waiting' });
  });
});

describe('the list of waiting prompts', () => {
  it('follows snapshot, prompt and resolved events', () => {
    let list = applyOperatorEvent([], { type: 'snapshot', prompts: [prompt('1')] });
    list = applyOperatorEvent(list, { type: 'prompt', prompt: prompt('2') });
    list = applyOperatorEvent(list, { type: 'answered', id: '1' });
    expect(list.map((p) => p.id)).toEqual(['1', '2']);
    list = applyOperatorEvent(list, { type: 'resolved', id: '1', outcome: 'ask_allowed' });
    list = applyOperatorEvent(list, { type: 'error', message: 'x' });
    expect(list.map((p) => p.id)).toEqual(['2']);
    expect(applyOperatorEvent(list, { type: 'snapshot', prompts: [] })).toEqual([]);
  });
});

describe('rendering', () => {
  it('counts down to the expiry, rounding up, and says expired', () => {
    expect(secondsLeft('2030-01-01T00:01:00.000Z', now)).toBe(50);
    expect(formatCountdown('2030-01-01T00:01:00.000Z', now)).toBe('expires in 50s');
    expect(formatCountdown('2030-01-01T00:00:10.001Z', now)).toBe('expires in 1s');
    expect(formatCountdown('2030-01-01T00:00:10.000Z', now)).toBe('expired');
    expect(formatCountdown('not a date', now)).toBe('expired');
  });

  it('shows who, what, what asked, why and the time left', () => {
    const text = renderPrompt(prompt('abc123'), now, { index: 0, total: 2 }).join('\n');
    expect(text).toContain('[1/2] vps-bmw (host:vps-bmw) wants to run execute_command');
    expect(text).toContain('target:   git push');
    expect(text).toContain('asked by: mode default');
    expect(text).toContain('reason:   execute_command is dangerous; mode default asks');
    expect(text).toContain('expires in 50s   id abc123');
  });

  it('names a caller that is not a host by its principal alone (key:, user:, guest:)', () => {
    const lines = renderPrompt(prompt('p1', { caller_host: '-', caller_principal: 'key:ci-deploy' }), new Date('2026-01-01T00:00:00Z'));
    expect(lines[0]).toBe('key:ci-deploy wants to run execute_command');
  });

  it('escapes control characters a caller put in its target, so it cannot repaint the screen', () => {
    const evil = prompt('x', { target: 'ls\u001b[2J\u001b[H\r\nALLOWED by operator\u202e', caller_host: 'h\u0007' });
    const text = renderPrompt(evil, now).join('\n');
    expect(Array.from(text).filter((c) => c !== '\n' && (c < ' ' || c === '\u007f' || c === '\u202e'))).toEqual([]);
    expect(text).toContain('ls\\u001b[2J\\u001b[H\\r\\nALLOWED by operator\\u202e');
    expect(text).toContain('h\\u0007 (host:vps-bmw)');
    expect(sanitize('plain text: /srv/é')).toBe('plain text: /srv/é');
  });

  it('draws the selected prompt in full and the others one line each', () => {
    const screen = renderScreen([prompt('1'), prompt('2', { target: 'make deploy' })], '2', now, 'allowed once: x');
    expect(screen).toContain('[2/2] vps-bmw');
    expect(screen).toContain('[a] allow once');
    expect(screen).toMatch(/also waiting:\n {2}vps-bmw {2}execute_command\(git push\) {2}expires in 50s/);
    expect(screen.endsWith('allowed once: x')).toBe(true);
    expect(renderScreen([], undefined, now, '')).toContain('No requests waiting');
  });

  it('writes one plain block per event in line mode', () => {
    expect(renderEventLines({ type: 'snapshot', prompts: [] }, now)).toEqual(['connected as operator; no requests waiting']);
    expect(renderEventLines({ type: 'resolved', id: 'ab', outcome: 'ask_timeout' }, now)).toEqual(['ab: timed out (denied)']);
    expect(renderEventLines({ type: 'prompt', prompt: prompt('ab') }, now).at(-1)).toMatch(/a \(allow once\)/);
    expect(renderEventLines({ type: 'error', message: 'bad\u001b' }, now)).toEqual(['error: bad\\u001b']);
  });

  it('says what an answer did', () => {
    expect(describeAnswer({ id: '1', decision: 'allow', scope: 'global' }, prompt('1'), 'execute_command(git push)')).toBe('allow always: execute_command(git push)  (rule execute_command(git push))');
    expect(describeAnswer({ id: '1', decision: 'deny' }, undefined)).toBe('deny: 1');
  });

  it('lists pending prompts as a table, and says when no operator is connected', () => {
    const table = renderPendingTable([prompt('abc', { operation: 'exec', tool: 'connect', target: 'prod-db' })], 1, now);
    expect(table.split('\n')[0]).toMatch(/^ID +CALLER +CALL +ASKED BY +EXPIRES$/);
    expect(table).toContain('connect(exec:prod-db)');
    expect(table).toContain('50s');
    expect(table).toContain('1 operator connected');
    expect(renderPendingTable([], 0, now)).toMatch(/no requests waiting; no operator connected/);
  });
});
