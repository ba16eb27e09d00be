import { BaseCommand } from '../../src/cli/base-command.js';
import { startInBackground, stopDaemon } from '../../src/cli/agent-control.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import type { StatusReply } from '../../src/transport/local-api.js';

export default class AgentRestart extends BaseCommand {
  static override summary = "Stop this host's daemon (if running) and start it again.";
  static override description = 'Session rules are kept in memory only, so a restart forgets them.';
  static override examples = ['<%= config.bin %> agent restart', '<%= config.bin %> agent restart --json'];

  async run(): Promise<{ was_running: boolean; status: StatusReply }> {
    await this.parse(AgentRestart);
    const home = resolveCmdopHome();
    const progress = (text: string): void => {
      if (!this.jsonEnabled()) process.stderr.write(`${text}\n`);
    };
    const stopped = await stopDaemon(home, progress);
    const { status } = await startInBackground(home, progress);
    if (!this.jsonEnabled()) this.log(`restarted: ${status.host_name} (pid ${status.pid}), listening on ${status.listen_address}`);
    return { was_running: stopped.was_running, status };
  }
}
