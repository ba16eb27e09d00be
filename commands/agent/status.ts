import { BaseCommand } from '../../src/cli/base-command.js';
import { daemonStatus } from '../../src/cli/agent-control.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import type { StatusReply } from '../../src/transport/local-api.js';

export default class AgentStatus extends BaseCommand {
  static override summary = "Show whether this host's daemon runs, and what it is doing.";
  static override description = 'Exit code 7 when the daemon is not running.';
  static override examples = ['<%= config.bin %> agent status', '<%= config.bin %> agent status --json'];

  async run(): Promise<StatusReply> {
    await this.parse(AgentStatus);
    const s = await daemonStatus(resolveCmdopHome());
    if (!this.jsonEnabled()) {
      const uptime = Math.round(s.uptime_ms / 1000);
      this.log(
        [
          `running      pid ${s.pid}, version ${s.version}, up ${uptime} s`,
          `host         ${s.host_name}`,
          `listening    ${s.listen_address}`,
          `workspace    ${s.workspace.name} (${s.workspace.id})${s.workspace.is_ca ? ', CA host' : ''}`,
          `mode         ${s.mode}`,
          `peers online ${s.peers_online}`,
          `calls served ${s.calls_served}`,
          `operators    ${s.operators_connected}`,
        ].join('\n'),
      );
    }
    return s;
  }
}
