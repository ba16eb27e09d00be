import { Args, Flags, type Interfaces } from '@oclif/core';
import { connectClient, credentialFlags } from '../../src/cli/connect-client.js';
import { BaseCommand, toCmdopError } from '../../src/cli/base-command.js';
import { EXEC_GRACE_MS, shellExitCode } from '../../src/client/index.js';
import { CmdopError } from '../../src/errors.js';
import type { CallReply, WireGateDecision } from '../../src/transport/local-api.js';

const MAX_TIMEOUT_S = 600;

/** The `--json` output: the same shape whether the command ran or not; `ran` says which. */
interface ExecResult {
  readonly hostname: string | null;
  readonly command: string | null;
  readonly ran: boolean;
  /** The remote command's own exit code; null when it did not run or a signal ended it. */
  readonly exit_code: number | null;
  readonly signal: string | null;
  readonly timed_out: boolean;
  readonly stdout: string;
  readonly stderr: string;
  readonly duration_ms: number | null;
  readonly truncated: { readonly stdout: boolean; readonly stderr: boolean };
  readonly decision: WireGateDecision | null;
  readonly error?: { readonly code: string; readonly exit_code: number; readonly message: string; readonly hint: string | null; readonly details: Readonly<Record<string, unknown>> | null };
}

export default class ConnectExec extends BaseCommand {
  static override summary = 'Run a shell command on a host of the workspace, through its gate.';
  static override description = [
    'The command line goes to your own daemon, which calls HOST (this host or a peer); HOST\'s gate decides, and its audit log records the call.',
    'With an API key (--api-key, CMDOP_API_KEY, --workspace, or one stored with `cmdop connect key set`), an OAuth login (`cmdop login`) or a share token (--share), the call goes straight to HOST over TLS instead, as key:NAME, user:SUBJECT or guest:ID; `cmdop whoami` shows which credential is used.',
    'Words after -- are joined with spaces into one command line; a single quoted argument is taken as it is.',
    'The remote stdout and stderr are printed as they are, and the exit code is the command\'s own (128+N when signal N ended it).',
    'When the command did not run, the exit code says why: 2 bad input, 3 denied by the host\'s gate, 4 unknown host, 7 host or daemon unreachable.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> connect exec vps-audi -- uptime',
    "<%= config.bin %> connect exec vps-audi 'cd /srv/app && git status --short'",
    '<%= config.bin %> connect exec build-box --cwd /srv/app --timeout 120 -- make test',
    '<%= config.bin %> connect exec vps-audi --json -- df -h /',
    'CMDOP_API_KEY=cmdop-key.… <%= config.bin %> connect exec vps-audi -- uname -a',
    '<%= config.bin %> connect exec vps-audi --share cmdop-share.… -- uptime',
  ];
  static override usage = ['connect exec HOST [--timeout SECONDS] [--cwd DIR] [--json] -- COMMAND...', "connect exec HOST [FLAGS] 'COMMAND LINE'"];
  // Not strict: the command's words follow the host as extra arguments.
  static override strict = false;
  static override args = {
    host: Args.string({ description: 'The host to run the command on (its host name).', required: true, ignoreStdin: true }),
    command: Args.string({ description: 'The command line, after -- or as one quoted argument.', required: false, ignoreStdin: true }),
  };
  static override flags = {
    ...credentialFlags,
    timeout: Flags.integer({ description: `Seconds the command may run on the host (1-${MAX_TIMEOUT_S}).`, default: 30, min: 1, max: MAX_TIMEOUT_S }),
    cwd: Flags.string({ description: 'Working directory on the host.' }),
  };

  private target: { host: string | null; command: string | null } = { host: null, command: null };

  async run(): Promise<ExecResult> {
    const { args, argv, flags } = await this.parse(ConnectExec);
    this.target = { host: args.host, command: null };
    const command = commandLine(this.argv, argv.length, args.command);
    this.target = { host: args.host, command };
    // With a machine password set, only an unlocked CLI may call hosts.
    const client = await connectClient(flags);
    const timeoutMs = flags.timeout * 1000;
    const reply = await client.exec(args.host, command, {
      timeoutMs,
      deadlineMs: timeoutMs + EXEC_GRACE_MS,
      ...(flags.cwd === undefined ? {} : { cwd: flags.cwd }),
    });
    const result = ranResult(command, reply);
    process.exitCode = shellExitCode(reply.result);
    if (!this.jsonEnabled()) {
      process.stdout.write(reply.result.stdout);
      process.stderr.write(reply.result.stderr);
      for (const note of notes(reply, flags.timeout)) process.stderr.write(`${note}\n`);
    }
    return result;
  }

  /**
   * A call that did not run keeps the documented `--json` shape (`ran: false` plus `error`) and
   * says who denied it; `--debug` after `--` belongs to the remote command, so it is not ours.
   */
  protected override async catch(err: Interfaces.CommandError): Promise<void> {
    const error = describe(toCmdopError(err), this.target.host);
    process.exitCode = error.exitCode;
    const stack = debugRequested(this.argv) ? `${err.stack ?? String(err)}\n` : '';
    if (!this.jsonEnabled()) {
      process.stderr.write(`Error: ${error.message}\n${error.hint === undefined ? '' : `${error.hint}\n`}${stack}`);
      return Promise.resolve();
    }
    const decision = error.details?.decision;
    const result: ExecResult = {
      hostname: this.target.host,
      command: this.target.command,
      ran: false,
      exit_code: null,
      signal: null,
      timed_out: false,
      stdout: '',
      stderr: '',
      duration_ms: null,
      truncated: { stdout: false, stderr: false },
      decision: isDecision(decision) ? decision : null,
      error: { code: error.code, exit_code: error.exitCode, message: error.message, hint: error.hint ?? null, details: error.details ?? null },
    };
    this.logJson(result);
    process.stderr.write(stack);
    return Promise.resolve();
  }
}

/**
 * The command line: the words after the first `--`, joined with spaces, or the one argument given
 * without `--`. Taken from the raw argv, since the parser reorders repeated words.
 */
function commandLine(rawArgv: readonly string[], positionals: number, quoted: string | undefined): string {
  const hint = 'Example: cmdop connect exec HOST -- ls -la /srv   (or one quoted argument: cmdop connect exec HOST \'ls -la /srv\')';
  const dashdash = rawArgv.indexOf('--');
  let line: string;
  if (dashdash >= 0) {
    const words = rawArgv.slice(dashdash + 1);
    // Positionals before `--` other than HOST would be silently dropped or misordered.
    if (positionals - words.length > 1) {
      throw new CmdopError('invalid_input', 'give the command either after -- or as one quoted argument, not both', { hint });
    }
    line = words.join(' ');
  } else {
    const rest = positionals - 1;
    if (rest > 1) {
      throw new CmdopError('invalid_input', 'a command of several words goes after --, or in quotes as one argument', { hint });
    }
    line = quoted ?? '';
  }
  if (line.trim() === '') throw new CmdopError('invalid_input', 'no command to run', { hint });
  return line;
}

function ranResult(command: string, reply: CallReply<'execute_command'>): ExecResult {
  const out = reply.result;
  return {
    hostname: reply.hostname,
    command,
    ran: true,
    exit_code: out.exit_code,
    signal: out.signal,
    timed_out: out.timed_out,
    stdout: out.stdout,
    stderr: out.stderr,
    duration_ms: out.duration_ms,
    truncated: { stdout: out.stdout_truncated, stderr: out.stderr_truncated },
    decision: reply.decision,
  };
}

function notes(reply: CallReply<'execute_command'>, timeoutS: number): string[] {
  const out = reply.result;
  const lines: string[] = [];
  const cut = [out.stdout_truncated ? 'stdout' : '', out.stderr_truncated ? 'stderr' : ''].filter((s) => s !== '');
  if (cut.length > 0) lines.push(`[truncated] ${cut.join(' and ')} of the command went over ${reply.hostname}'s output cap and was cut`);
  if (out.timed_out) lines.push(`[timed out] the command ran longer than ${timeoutS} s on ${reply.hostname} and was stopped${out.signal === null ? '' : ` (${out.signal})`}; raise --timeout (max ${MAX_TIMEOUT_S})`);
  else if (out.signal !== null) lines.push(`[signal] the command was ended by ${out.signal} on ${reply.hostname}`);
  return lines;
}

/** A gate's denial reads `denied by HOST: reason`, from the decision the reply carries. */
function describe(error: CmdopError, host: string | null): CmdopError {
  const decision = error.details?.decision;
  // Only a gate's refusal carries a decision; a refused local token is not the host's doing.
  if (error.code !== 'denied' || host === null || !isDecision(decision)) return error;
  const by = typeof error.details?.hostname === 'string' ? error.details.hostname : host;
  return new CmdopError('denied', `denied by ${by}: ${decision.reason}`, {
    cause: error,
    ...(error.hint === undefined ? {} : { hint: error.hint }),
    ...(error.details === undefined ? {} : { details: error.details }),
  });
}

function isDecision(value: unknown): value is WireGateDecision {
  return typeof value === 'object' && value !== null && typeof (value as { decision?: unknown }).decision === 'string' && typeof (value as { reason?: unknown }).reason === 'string';
}

/** `--debug` counts only before `--`; after it, it belongs to the remote command. */
function debugRequested(rawArgv: readonly string[]): boolean {
  const dashdash = rawArgv.indexOf('--');
  return (dashdash < 0 ? rawArgv : rawArgv.slice(0, dashdash)).includes('--debug');
}
