import { createInterface } from 'node:readline';
import { BaseCommand } from '../../src/cli/base-command.js';
import { actionForKey, actionForLine, applyOperatorEvent, describeAnswer, renderEventLines, renderScreen, sanitize, type PromptAction } from '../../src/cli/prompts-render.js';
import { connectOperator, resolveLocalEndpoint, type OperatorConnection } from '../../src/client/operator-client.js';
import { CmdopError } from '../../src/errors.js';
import type { AnswerRequest, PendingPrompt } from '../../src/transport/local-api.js';

/** Home the cursor and clear below it (less flicker than clearing the whole screen). */
const REDRAW = '\u001b[H\u001b[J';
/** The alternate screen, so quitting gives the terminal back as it was; with the cursor hidden. */
const ENTER = '\u001b[?1049h\u001b[?25l';
const LEAVE = '\u001b[?25h\u001b[?1049l';

export default class PermissionsPrompts extends BaseCommand {
  static override summary = 'Answer ask prompts as the operator of this host, live.';
  static override description = [
    'Connects to the running daemon as an operator and shows each request the gate asks about: who calls, the tool and target, what asked (a rule or the mode), why, and the time left.',
    'Keys: a allow once, s allow for this session, g allow always (a global rule for exactly that target), d deny, tab next, q quit.',
    'When stdin is not a terminal, reads one answer per line instead: a, s, g or d, optionally followed by a prompt id (default: the oldest), or q.',
    'With --json, prints each operator event as one JSON line and reads nothing: stay connected as an operator and answer with `cmdop permissions answer`.',
    'While no operator is connected, every ask is denied at once; when the last one quits, what was waiting is denied.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> permissions prompts',
    "printf 'a\\n' | <%= config.bin %> permissions prompts",
    '<%= config.bin %> permissions prompts --json | jq -c \'select(.type == "prompt")\'',
  ];

  async run(): Promise<undefined> {
    await this.parse(PermissionsPrompts);
    const connection = await connectOperator(await resolveLocalEndpoint());
    let byDaemon: boolean;
    if (this.jsonEnabled()) byDaemon = await watchJson(connection);
    else if (process.stdin.isTTY && process.stdout.isTTY) byDaemon = await interactive(connection);
    else byDaemon = await lineMode(connection);
    if (byDaemon) {
      throw new CmdopError('unavailable', 'the daemon closed the operator channel', { hint: 'It stopped or restarted; check it with `cmdop agent status`.' });
    }
    return undefined;
  }
}

/** Resolves when the user quits (false) or the daemon closes the channel (true). */
type Session = Promise<boolean>;

/** Wires SIGINT and the channel's end to `quit`; returns the function that undoes it. */
function onEnd(connection: OperatorConnection, quit: (byDaemon: boolean) => void): () => void {
  const onSigint = (): void => {
    quit(false);
  };
  process.once('SIGINT', onSigint);
  void connection.closed.then(({ byDaemon }) => {
    quit(byDaemon);
  });
  return () => process.off('SIGINT', onSigint);
}

function watchJson(connection: OperatorConnection): Session {
  return new Promise((resolve) => {
    let done = false;
    const quit = (byDaemon: boolean): void => {
      if (done) return;
      done = true;
      undo();
      connection.close();
      resolve(byDaemon);
    };
    const undo = onEnd(connection, quit);
    void (async () => {
      for await (const event of connection.events) process.stdout.write(`${JSON.stringify(event)}\n`);
    })();
  });
}

function lineMode(connection: OperatorConnection): Session {
  return new Promise((resolve) => {
    let prompts: PendingPrompt[] = [];
    let done = false;
    const out = (lines: readonly string[]): void => {
      process.stdout.write(`${lines.join('\n')}\n`);
    };
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity, terminal: false });
    const quit = (byDaemon: boolean): void => {
      if (done) return;
      done = true;
      undo();
      lines.close();
      connection.close();
      resolve(byDaemon);
    };
    const undo = onEnd(connection, quit);
    void (async () => {
      for await (const event of connection.events) {
        prompts = applyOperatorEvent(prompts, event);
        // The reply to our own answer is reported when the answer resolves.
        if (event.type !== 'answered' && !(event.type === 'error' && event.id !== undefined)) out(renderEventLines(event, new Date()));
      }
    })();
    lines.on('line', (line) => {
      const action = actionForLine(line, prompts);
      if (action.kind === 'quit') quit(false);
      else if (action.kind === 'invalid') out([`error: ${action.message}`]);
      else if (action.kind === 'answer') {
        const shown = prompts.find((p) => p.id === action.answer.id);
        void sendAnswer(connection, action.answer, shown).then((text) => {
          out([text]);
        });
      }
    });
    // EOF: the script has nothing more to say.
    lines.on('close', () => {
      quit(false);
    });
  });
}

function interactive(connection: OperatorConnection): Session {
  return new Promise((resolve) => {
    const stdin = process.stdin;
    let prompts: PendingPrompt[] = [];
    let selected: string | undefined;
    let status = '';
    let done = false;
    const draw = (): void => {
      if (done) return;
      if (!prompts.some((p) => p.id === selected)) selected = prompts[0]?.id;
      process.stdout.write(`${REDRAW}${renderScreen(prompts, selected, new Date(), status)}`);
    };
    const ticker = setInterval(draw, 1000);
    const quit = (byDaemon: boolean): void => {
      if (done) return;
      done = true;
      undo();
      clearInterval(ticker);
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stdout.write(LEAVE);
      connection.close();
      resolve(byDaemon);
    };
    const undo = onEnd(connection, quit);
    const move = (step: number): void => {
      if (prompts.length === 0) return;
      const at = Math.max(0, prompts.findIndex((p) => p.id === selected));
      selected = prompts[(at + step + prompts.length) % prompts.length]?.id;
    };
    const act = (action: PromptAction | undefined): void => {
      if (action === undefined) return;
      if (action.kind === 'quit') {
        quit(false);
        return;
      }
      if (action.kind === 'next' || action.kind === 'previous') move(action.kind === 'next' ? 1 : -1);
      else {
        const shown = prompts.find((p) => p.id === action.answer.id);
        status = `sending: ${describeAnswer(action.answer, shown)}`;
        void sendAnswer(connection, action.answer, shown).then((text) => {
          status = text;
          draw();
        });
      }
      draw();
    };
    const onData = (chunk: Buffer): void => {
      const text = chunk.toString('utf8');
      // An escape sequence (an arrow key) arrives whole; plain keys typed fast may share a chunk.
      const keys = text.startsWith('\u001b') ? [text] : Array.from(text);
      for (const key of keys) {
        if (done) return;
        act(actionForKey(key, selected));
      }
    };
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
    process.stdout.write(ENTER);
    void (async () => {
      for await (const event of connection.events) {
        prompts = applyOperatorEvent(prompts, event);
        if (event.type === 'error' && event.id === undefined) status = `error: ${sanitize(event.message)}`;
        draw();
      }
    })();
    draw();
  });
}

/** Sends one answer; resolves with a line saying how it went (never rejects). */
async function sendAnswer(connection: OperatorConnection, answer: AnswerRequest, shown: PendingPrompt | undefined): Promise<string> {
  try {
    const { rule } = await connection.answer(answer);
    return describeAnswer(answer, shown, rule);
  } catch (error) {
    const e = CmdopError.from(error);
    return e.code === 'not_found' ? `too late: that request was already answered, withdrawn or expired` : `error: ${sanitize(e.message)}`;
  }
}
