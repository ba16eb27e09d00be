import { BaseCommand } from '../../src/cli/base-command.js';
import { stopDaemon } from '../../src/cli/agent-control.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';

export default class AgentStop extends BaseCommand {
  static override summary = "Stop this host's daemon, letting calls in flight finish.";
  static override examples = ['<%= config.bin %> agent stop', '<%= config.bin %> agent stop --json'];

  async run(): Promise<{ was_running: boolean; pid?: number }> {
    await this.parse(AgentStop);
    const result = await stopDaemon(resolveCmdopHome(), (text) => {
      if (!this.jsonEnabled()) process.stderr.write(`${text}\n`);
    });
    if (!this.jsonEnabled()) this.log(result.was_running ? `stopped (pid ${result.pid ?? '?'})` : 'the daemon was not running');
    return result;
  }
}
