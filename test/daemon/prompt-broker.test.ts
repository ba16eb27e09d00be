import { describe, expect, it } from 'vitest';
import { answeredByOperator, createPromptBroker, toAnswerReply, type PromptBroker, type PromptInput } from '../../src/daemon/prompt-broker.js';
import type { PromptBrokerLike } from '../../src/daemon/prompt-port.js';
import { CmdopError } from '../../src/errors.js';
import type { AnswerRequest, OperatorEvent } from '../../src/transport/local-api.js';

const input: PromptInput = {
  caller_host: 'vps-bmw',
  caller_principal: 'host:vps-bmw',
  tool: 'execute_command',
  operation: null,
  target: 'git push',
  asked_by: 'mode default',
  reason: 'execute_command is dangerous; mode default asks',
};

/** A clock the test moves by hand; the broker's timeouts still run on real timers. */
function fakeClock(start = Date.parse('2030-01-01T00:00:00.000Z')): { now: () => Date; advance: (ms: number) => void } {
  let t = start;
  return { now: () => new Date(t), advance: (ms) => (t += ms) };
}

/** Attaches a recording operator. */
function operator(broker: PromptBroker): { events: OperatorEvent[]; detach: () => void } {
  const events: OperatorEvent[] = [];
  const detach = broker.attach((e) => events.push(e));
  return { events, detach };
}

function thrown(fn: () => unknown): CmdopError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(CmdopError);
    return error as CmdopError;
  }
  throw new Error('expected a throw');
}

describe('prompt broker', () => {
  it('fits the port the gated call uses', () => {
    const port: PromptBrokerLike = createPromptBroker();
    expect(typeof port.ask).toBe('function');
  });

  it('denies at once, as nobody, when no operator is attached', async () => {
    const broker = createPromptBroker();
    const result = await broker.ask(input);
    expect(result).toMatchObject({ outcome: 'ask_denied', answered_by: 'nobody', ask_ms: 0 });
    expect(result.reason).toMatch(/no operator/);
    expect(answeredByOperator(result)).toBe(false);
    expect(broker.pending()).toEqual([]);
  });

  it('sends a snapshot on attach, then the prompt, with an unguessable id and its expiry', async () => {
    const clock = fakeClock();
    const broker = createPromptBroker({ now: clock.now, timeoutMs: 60_000 });
    const a = operator(broker);
    expect(a.events).toEqual([{ type: 'snapshot', prompts: [] }]);
    const asked = broker.ask(input);
    const [prompt] = broker.pending();
    expect(prompt).toMatchObject({ ...input, created_at: '2030-01-01T00:00:00.000Z', expires_at: '2030-01-01T00:01:00.000Z' });
    expect(prompt?.id).toMatch(/^[0-9a-f]{32}$/);
    expect(a.events[1]).toEqual({ type: 'prompt', prompt });

    const b = operator(broker);
    expect(b.events).toEqual([{ type: 'snapshot', prompts: [prompt] }]);
    expect(broker.operators()).toBe(2);

    clock.advance(1234);
    expect(broker.answer({ id: prompt!.id, decision: 'allow', scope: 'session' })).toMatchObject({ prompt, decision: 'allow', scope: 'session' });
    const result = await asked;
    expect(result).toMatchObject({ outcome: 'ask_allowed', answered_by: 'operator', scope: 'session', ask_ms: 1234, prompt });
    expect(answeredByOperator(result)).toBe(true);
    // Every operator learns it is settled, so no UI keeps showing it.
    for (const o of [a, b]) expect(o.events.at(-1)).toEqual({ type: 'resolved', id: prompt!.id, outcome: 'ask_allowed' });
    expect(broker.pending()).toEqual([]);
  });

  it.each<[AnswerRequest['decision'], AnswerRequest['scope'], string, string | undefined]>([
    ['allow', undefined, 'ask_allowed', 'once'],
    ['allow', 'once', 'ask_allowed', 'once'],
    ['allow', 'global', 'ask_allowed', 'global'],
    ['deny', undefined, 'ask_denied', undefined],
    ['deny', 'once', 'ask_denied', undefined],
  ])('answer %s scope %s settles as %s', async (decision, scope, outcome, resultScope) => {
    const broker = createPromptBroker();
    operator(broker);
    const asked = broker.ask(input);
    const id = broker.pending()[0]!.id;
    broker.answer({ id, decision, ...(scope === undefined ? {} : { scope }) });
    const result = await asked;
    expect(result.outcome).toBe(outcome);
    expect(result.answered_by).toBe('operator');
    expect(result.scope).toBe(resultScope);
  });

  it('names the rule a session or global allow adds, when the daemon says how', async () => {
    const broker = createPromptBroker({ ruleFor: (p) => `${p.tool}(${p.target})` });
    operator(broker);
    const asked = broker.ask(input);
    const id = broker.pending()[0]!.id;
    const taken = broker.answer({ id, decision: 'allow', scope: 'global' });
    expect(toAnswerReply(taken)).toEqual({ id, decision: 'allow', scope: 'global', rule: 'execute_command(git push)' });
    expect((await asked).rule).toBe('execute_command(git push)');
  });

  it('takes only the first answer; a second one is not_found', async () => {
    const broker = createPromptBroker();
    operator(broker);
    const asked = broker.ask(input);
    const id = broker.pending()[0]!.id;
    broker.answer({ id, decision: 'deny' });
    expect(thrown(() => broker.answer({ id, decision: 'allow' })).code).toBe('not_found');
    expect((await asked).outcome).toBe('ask_denied');
  });

  it('refuses unknown ids and bad decisions or scopes without settling anything', async () => {
    const broker = createPromptBroker();
    operator(broker);
    const asked = broker.ask(input);
    const id = broker.pending()[0]!.id;
    expect(thrown(() => broker.answer({ id: 'f'.repeat(32), decision: 'allow' })).code).toBe('not_found');
    expect(thrown(() => broker.answer({ id: '', decision: 'allow' })).code).toBe('invalid_input');
    expect(thrown(() => broker.answer({ id, decision: 'maybe' } as unknown as AnswerRequest)).code).toBe('invalid_input');
    expect(thrown(() => broker.answer({ id, decision: 'allow', scope: 'forever' } as unknown as AnswerRequest)).code).toBe('invalid_input');
    // A deny answers this request only; a lasting deny is a rule, added on purpose.
    const denyForever = thrown(() => broker.answer({ id, decision: 'deny', scope: 'global' }));
    expect(denyForever.code).toBe('invalid_input');
    expect(denyForever.hint).toMatch(/permissions deny/);
    expect(broker.pending().map((p) => p.id)).toEqual([id]);
    broker.answer({ id, decision: 'allow' });
    expect((await asked).outcome).toBe('ask_allowed');
  });

  it('times out on a real timer as ask_timeout', async () => {
    const broker = createPromptBroker({ timeoutMs: 200 });
    const a = operator(broker);
    const started = Date.now();
    const result = await broker.ask(input);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(result).toMatchObject({ outcome: 'ask_timeout', answered_by: 'timeout' });
    expect(result.reason).toMatch(/no answer .* 200 ms/);
    expect(a.events.at(-1)).toMatchObject({ type: 'resolved', outcome: 'ask_timeout' });
    expect(thrown(() => broker.answer({ id: result.prompt!.id, decision: 'allow' })).code).toBe('not_found');
  });

  it('withdraws the prompt when the caller goes away', async () => {
    const broker = createPromptBroker();
    const a = operator(broker);
    const controller = new AbortController();
    const asked = broker.ask(input, controller.signal);
    const id = broker.pending()[0]!.id;
    controller.abort();
    const result = await asked;
    expect(result).toMatchObject({ outcome: 'ask_denied', answered_by: 'nobody' });
    expect(result.reason).toMatch(/caller went away/);
    expect(a.events.at(-1)).toEqual({ type: 'resolved', id, outcome: 'ask_denied' });
    expect(broker.pending()).toEqual([]);
  });

  it('denies at once for a signal that is already aborted', async () => {
    const broker = createPromptBroker();
    const a = operator(broker);
    const result = await broker.ask(input, AbortSignal.abort());
    expect(result).toMatchObject({ outcome: 'ask_denied', answered_by: 'nobody' });
    expect(a.events).toHaveLength(1);
  });

  it('denies everything waiting when the last operator detaches, not before', async () => {
    const broker = createPromptBroker();
    const a = operator(broker);
    const b = operator(broker);
    const first = broker.ask(input);
    const second = broker.ask({ ...input, target: 'make deploy' });
    a.detach();
    a.detach();
    expect(broker.operators()).toBe(1);
    expect(broker.pending()).toHaveLength(2);
    b.detach();
    expect(broker.operators()).toBe(0);
    for (const result of await Promise.all([first, second])) {
      expect(result).toMatchObject({ outcome: 'ask_denied', answered_by: 'nobody' });
      expect(result.reason).toMatch(/last operator disconnected/);
    }
  });

  it('keeps the prompts in the order they were asked', () => {
    const broker = createPromptBroker();
    operator(broker);
    void broker.ask({ ...input, target: 'one' });
    void broker.ask({ ...input, target: 'two' });
    void broker.ask({ ...input, target: 'three' });
    expect(broker.pending().map((p) => p.target)).toEqual(['one', 'two', 'three']);
    broker.close();
  });

  it('denies an ask beyond maxPending at once', async () => {
    const broker = createPromptBroker({ maxPending: 1 });
    operator(broker);
    const first = broker.ask(input);
    const second = await broker.ask(input);
    expect(second).toMatchObject({ outcome: 'ask_denied', answered_by: 'nobody' });
    expect(second.reason).toMatch(/already waiting/);
    broker.close();
    expect((await first).outcome).toBe('ask_denied');
  });

  it('keeps working when one operator listener throws', async () => {
    const broker = createPromptBroker();
    broker.attach(() => {
      throw new Error('socket gone');
    });
    const good = operator(broker);
    const asked = broker.ask(input);
    const id = broker.pending()[0]!.id;
    expect(good.events.at(-1)).toMatchObject({ type: 'prompt' });
    broker.answer({ id, decision: 'allow' });
    expect((await asked).outcome).toBe('ask_allowed');
  });

  it('close denies everything waiting and every later ask', async () => {
    const broker = createPromptBroker();
    const a = operator(broker);
    const asked = broker.ask(input);
    broker.close();
    expect(await asked).toMatchObject({ outcome: 'ask_denied', answered_by: 'nobody' });
    expect(a.events.at(-1)).toMatchObject({ type: 'resolved', outcome: 'ask_denied' });
    expect(broker.operators()).toBe(0);
    expect((await broker.ask(input)).reason).toMatch(/shutting down/);
    const late: OperatorEvent[] = [];
    broker.attach((e) => late.push(e));
    expect(late).toEqual([{ type: 'error', message: 'the daemon is shutting down' }]);
  });
});
