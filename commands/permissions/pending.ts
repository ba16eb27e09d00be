import { BaseCommand } from '../../src/cli/base-command.js';
import { renderPendingTable } from '../../src/cli/prompts-render.js';
import { fetchPending, resolveLocalEndpoint } from '../../src/client/operator-client.js';
import type { PendingReply } from '../../src/transport/local-api.js';

export default class PermissionsPending extends BaseCommand {
  static override summary = 'List the requests waiting for the operator of this host to answer.';
  static override description = [
    'Asks the running daemon which ask prompts wait now, with the caller, the call, what asked and the seconds left.',
    'Answer one with `cmdop permissions answer ID allow|deny`, or all of them live with `cmdop permissions prompts`.',
    'Prompts exist only while an operator is connected: with none connected, every ask is denied at once.',
  ].join('\n');
  static override examples = ['<%= config.bin %> permissions pending', '<%= config.bin %> permissions pending --json'];

  async run(): Promise<PendingReply> {
    await this.parse(PermissionsPending);
    const reply = await fetchPending(await resolveLocalEndpoint());
    if (!this.jsonEnabled()) this.log(renderPendingTable(reply.prompts, reply.operators_connected, new Date()));
    return reply;
  }
}
