import { createInterface } from 'node:readline';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { toCmdopError } from '../../src/cli/base-command.js';
import { checkRequest, loadHostPolicy, openHostContext } from '../../src/cli/host-context.js';
import { formatRequest, renderDecision } from '../../src/cli/render.js';
import { CmdopError } from '../../src/errors.js';
import { parseRequestSpec, requestFromJson } from '../../src/gate/request-spec.js';
import type { GateDecision, GateRequest } from '../../src/gate/types.js';

type CheckResult = GateRequest & GateDecision;

export default class PermissionsCheck extends BaseCommand {
  static override summary = 'Ask the gate what it would decide for a call, without running anything.';
  static override description = [
    'The request is decided as a call from a remote peer (or from --from HOST). Exit code 0 for allow or ask, 3 for deny.',
    'With --stdin, reads JSON lines {"tool","operation"?,"target","cwd"?} and prints one decision per line, in order;',
    'a bad line gets an {"error": ...} line and the rest continue (exit 2 at the end if any line was bad).',
  ].join('\n');
  static override examples = [
    "<%= config.bin %> permissions check 'execute_command(git status; rm -rf ~)'",
    "<%= config.bin %> permissions check 'read_file(~/.ssh/id_rsa)' --json",
    "<%= config.bin %> permissions check 'connect(exec:prod-db)' --from vps-bmw",
    `printf '%s\\n' '{"tool":"read_file","target":"/srv/app/x"}' | <%= config.bin %> permissions check --stdin --json`,
  ];
  static override args = { request: Args.string({ ignoreStdin: true, description: "The call as tool(target), e.g. 'execute_command(git status)'.", required: false }) };
  static override flags = {
    stdin: Flags.boolean({ description: 'Read JSON-line requests from standard input.', }),
    from: Flags.string({ description: 'Decide as a call from this host (your own host name shows self-bypass).' }),
    cwd: Flags.string({ description: 'Working directory for relative paths in the command.' }),
  };

  async run(): Promise<CheckResult | undefined> {
    const { args, flags } = await this.parse(PermissionsCheck);
    const hint = "Example: cmdop permissions check 'execute_command(git status)'";
    if (flags.stdin && args.request !== undefined) throw new CmdopError('invalid_input', 'give either a request or --stdin, not both', { hint });
    if (!flags.stdin && args.request === undefined) throw new CmdopError('invalid_input', 'nothing to check: give a request such as tool(target), or --stdin', { hint });
    const context = await openHostContext();
    const { policy, config } = await loadHostPolicy(context);
    const decide = (request: GateRequest): CheckResult => ({ ...request, ...checkRequest(context, policy, config, request, flags.from) });
    if (!flags.stdin) {
      const parsed = parseRequestSpec(args.request ?? '');
      const result = decide(flags.cwd === undefined ? parsed : { ...parsed, cwd: flags.cwd });
      if (!this.jsonEnabled()) this.log(`${formatRequest(result)}\n${renderDecision(result)}`);
      if (result.decision === 'deny') this.setExitCode('denied');
      return result;
    }
    let bad = 0;
    const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
    let number = 0;
    for await (const line of lines) {
      number++;
      if (line.trim().length === 0) continue;
      let out: unknown;
      try {
        out = decide(requestFromJson(JSON.parse(line) as unknown));
      } catch (error) {
        bad++;
        const e = error instanceof SyntaxError ? new CmdopError('invalid_input', `not JSON: ${error.message}`) : toCmdopError(error);
        out = { error: { line: number, code: e.code, message: e.message } };
      }
      process.stdout.write(`${JSON.stringify(out)}\n`);
    }
    if (bad > 0) this.setExitCode('invalid_input');
    return undefined;
  }
}
