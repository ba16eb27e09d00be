/**
 * The CLI side of the machine password (issue 4 §5): the audit wiring for password checks, and
 * reading a password from standard input (without echo on a terminal). The guard that
 * permission-changing and host-calling commands run first, `requireUnlocked`, lives beside the
 * password in identity/machine-password.ts, where the daemon uses it too. A password is never
 * taken from the command line, where it would land in the shell history and the process list.
 */
import { userInfo } from 'node:os';
import { createAuditRecord } from '../audit/audit-record.js';
import { createAuditSink } from '../audit/audit-sink.js';
import { logsDir } from '../config/cmdop-home.js';
import { CmdopError } from '../errors.js';
import { PASSWORD_MAX_LENGTH, type PasswordAction, type PasswordAttemptRecorder } from '../identity/machine-password.js';

/** The audit tool name of each password check. */
const AUDIT_TOOLS: Readonly<Record<PasswordAction, string>> = {
  unlock: 'password_unlock',
  change: 'password_set',
  clear: 'password_clear',
};

/**
 * Records password checks in `CMDOP_HOME/logs/audit.log`: source `local`, empty target, and
 * the digest of an empty input — the password never reaches the log.
 */
export function createPasswordAuditor(home: string): PasswordAttemptRecorder {
  return async (attempt) => {
    const sink = await createAuditSink({ dir: logsDir(home) });
    try {
      await sink.append(
        createAuditRecord({
          decision: attempt.decision,
          tool: AUDIT_TOOLS[attempt.action],
          target: '',
          mode: 'default',
          source: 'local',
          reason: attempt.reason,
          hostname: 'local',
          user: osUserName(),
          input: {},
          now: attempt.at,
        }),
      );
    } finally {
      await sink.close();
    }
  };
}

/** The input and output {@link readPasswords} uses; the process's stdin and stderr by default. */
export interface PasswordInputOptions {
  /** A terminal has `isTTY` true and `setRawMode`, as a `tty.ReadStream` does. */
  readonly input?: NodeJS.ReadableStream & { readonly isTTY?: boolean; readonly setRawMode?: (raw: boolean) => unknown };
  readonly output?: NodeJS.WritableStream;
}

/**
 * Reads one password per prompt. On a terminal each prompt is shown (on stderr) and the typing
 * is not echoed; otherwise the passwords are the first lines of the input, in prompt order.
 */
export async function readPasswords(prompts: readonly string[], options: PasswordInputOptions = {}): Promise<string[]> {
  const input = options.input ?? process.stdin;
  const output = options.output ?? process.stderr;
  if (input.isTTY === true && input.setRawMode !== undefined) {
    const answers: string[] = [];
    for (const prompt of prompts) answers.push(await readHiddenLine(prompt, input, input.setRawMode.bind(input), output));
    return answers;
  }
  const lines = await readLines(input, prompts.length);
  if (lines.length < prompts.length) {
    throw new CmdopError('invalid_input', `expected ${prompts.length} line(s) on standard input (${prompts.join(', ')}), got ${lines.length}`, {
      hint: 'Give each password on its own line, or run the command in a terminal to be asked for them.',
    });
  }
  return lines;
}

// Generous: a password of PASSWORD_MAX_LENGTH characters of 4 UTF-8 bytes each, plus a newline.
const MAX_LINE_BYTES = PASSWORD_MAX_LENGTH * 4 + 2;

/** The first `count` lines of `input` (fewer at its end), each without its line ending. */
function readLines(input: NodeJS.ReadableStream, count: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let newlines = 0;
    let settled = false;
    const cleanup = (): void => {
      settled = true;
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('error', onError);
      input.pause();
    };
    const onData = (chunk: Buffer | string): void => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      chunks.push(bytes);
      size += bytes.length;
      for (const byte of bytes) if (byte === 0x0a) newlines++;
      if (newlines >= count) onEnd();
      else if (size > MAX_LINE_BYTES * count) {
        cleanup();
        reject(new CmdopError('invalid_input', `a password on standard input is longer than ${PASSWORD_MAX_LENGTH} characters`));
      }
    };
    const onEnd = (): void => {
      if (settled) return;
      cleanup();
      let text: string;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
      } catch (error) {
        reject(new CmdopError('invalid_input', 'standard input is not valid UTF-8 text', { cause: error }));
        return;
      }
      const lines = text.split('\n').map((line) => line.replace(/\r$/, ''));
      // A final line without a newline counts; the empty string after a final newline does not.
      if (lines.at(-1) === '') lines.pop();
      resolve(lines.slice(0, count));
    };
    const onError = (error: Error): void => {
      if (settled) return;
      cleanup();
      reject(new CmdopError('invalid_input', `cannot read standard input: ${error.message}`, { cause: error }));
    };
    input.on('data', onData);
    input.on('end', onEnd);
    input.on('error', onError);
    input.resume();
  });
}

/** Shows `prompt` and reads one line from a terminal in raw mode, echoing nothing. */
function readHiddenLine(prompt: string, input: NodeJS.ReadableStream, setRawMode: (raw: boolean) => unknown, output: NodeJS.WritableStream): Promise<string> {
  output.write(prompt);
  return new Promise((resolve, reject) => {
    const chars: string[] = [];
    const finish = (error?: CmdopError): void => {
      input.off('data', onData);
      setRawMode(false);
      input.pause();
      output.write('\n');
      if (error === undefined) resolve(chars.join(''));
      else reject(error);
    };
    const onData = (chunk: Buffer | string): void => {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      for (const ch of text) {
        if (ch === '\r' || ch === '\n') {
          finish();
          return;
        }
        if (ch === '\u0003') {
          finish(new CmdopError('invalid_input', 'cancelled'));
          return;
        }
        if (ch === '\u0004') {
          if (chars.length === 0) {
            finish(new CmdopError('invalid_input', 'no password given'));
            return;
          }
          continue;
        }
        // An escape sequence (an arrow key) arrives whole in one chunk: drop the rest of it.
        if (ch === '\u001b') break;
        if (ch === '\u007f' || ch === '\b') chars.pop();
        else if (ch === '\u0015') chars.length = 0;
        else if (ch >= ' ') chars.push(ch);
        if (chars.length > PASSWORD_MAX_LENGTH) {
          finish(new CmdopError('invalid_input', `the password is too long: at most ${PASSWORD_MAX_LENGTH} characters`));
          return;
        }
      }
    };
    setRawMode(true);
    input.resume();
    input.on('data', onData);
  });
}

function osUserName(): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry for this uid (some containers).
    return process.env['USER'] ?? String(process.getuid?.() ?? '');
  }
}

/** Flags every password command accepts that take no value. */
const BOOLEAN_FLAGS = new Set(['--json', '--debug']);

/**
 * Refuses anything on a password command's line but its known flags (`valueFlags` take a
 * value), without echoing it: whatever was typed there may well be the password. Runs before
 * oclif parses the line, whose errors quote the offending argument.
 */
export function refusePasswordArguments(command: string, argv: readonly string[], valueFlags: readonly string[] = []): void {
  let unexpected = 0;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (BOOLEAN_FLAGS.has(arg)) continue;
    if (valueFlags.includes(arg)) {
      i++;
      continue;
    }
    if (valueFlags.some((flag) => arg.startsWith(`${flag}=`))) continue;
    unexpected++;
  }
  if (unexpected === 0) return;
  throw new CmdopError('invalid_input', `cmdop ${command} takes no arguments: the password is read from standard input, never from the command line`, {
    hint: 'Run it and type the password when asked, or pipe it in. If you typed your password on the command line it is now in your shell history: change it with `cmdop password set`.',
    details: { unexpected_arguments: unexpected },
  });
}
