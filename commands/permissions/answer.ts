import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { sanitize } from '../../src/cli/prompts-render.js';
import { postAnswer, resolveLocalEndpoint } from '../../src/client/operator-client.js';
import { CmdopError } from '../../src/errors.js';
import type { AnswerReply } from '../../src/transport/local-api.js';

export default class PermissionsAnswer extends BaseCommand {
  static override summary = 'Answer one waiting ask prompt: allow or deny it.';
  static override description = [
    'ID is the prompt id from `cmdop permissions pending` or `cmdop permissions prompts --json`.',
    '--scope applies to allow: once (this call only, the default), session (a session rule for exactly this target, until the daemon restarts) or global (a rule in permissions.yaml for exactly this target).',
    'A deny answers this one call; to deny such calls from now on, add a rule with `cmdop permissions deny`.',
    'With a machine password set, an allow for the session or global scope adds a rule and needs an unlocked machine (cmdop password unlock); once and deny do not.',
    'Exit code 3 when the machine is locked and the answer would add a rule; 4 when no prompt with that id is waiting (already answered, withdrawn or expired).',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> permissions answer 3f9c0e1d2b7a4c5e8f90a1b2c3d4e5f6 allow',
    '<%= config.bin %> permissions answer 3f9c0e1d2b7a4c5e8f90a1b2c3d4e5f6 allow --scope session',
    '<%= config.bin %> permissions answer 3f9c0e1d2b7a4c5e8f90a1b2c3d4e5f6 deny --json',
  ];
  static override args = {
    id: Args.string({ ignoreStdin: true, description: 'The prompt id.', required: true }),
    decision: Args.string({ ignoreStdin: true, description: 'allow or deny.', required: true, options: ['allow', 'deny'] }),
  };
  static override flags = {
    scope: Flags.string({ description: 'How long an allow holds.', options: ['once', 'session', 'global'] }),
  };

  async run(): Promise<AnswerReply> {
    const { args, flags } = await this.parse(PermissionsAnswer);
    const decision = args.decision === 'allow' ? 'allow' : 'deny';
    const scope = flags.scope === 'session' || flags.scope === 'global' ? flags.scope : flags.scope === 'once' ? 'once' : undefined;
    if (decision === 'deny' && scope !== undefined && scope !== 'once') {
      throw new CmdopError('invalid_input', `a deny answers this one call only; --scope ${scope} applies to allow`, {
        hint: 'To deny such calls from now on, add a rule: cmdop permissions deny RULE',
      });
    }
    if (!/^[0-9a-f]{8,64}$/i.test(args.id)) {
      throw new CmdopError('invalid_input', `${JSON.stringify(sanitize(args.id))} is not a prompt id`, { hint: 'Prompt ids are hexadecimal; list them with `cmdop permissions pending`.' });
    }
    const reply = await postAnswer(await resolveLocalEndpoint(), { id: args.id, decision, ...(scope === undefined ? {} : { scope }) });
    if (!this.jsonEnabled()) this.log(render(reply));
    return reply;
  }
}

function render(reply: AnswerReply): string {
  const what = reply.decision === 'deny' ? 'denied' : reply.scope === 'once' ? 'allowed once' : reply.scope === 'session' ? 'allowed for this session' : 'allowed always';
  return `${what}: prompt ${reply.id}${reply.rule === undefined ? '' : `\nrule added (${reply.scope}): ${sanitize(reply.rule)}`}`;
}
