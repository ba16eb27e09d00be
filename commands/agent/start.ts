import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { startInBackground } from '../../src/cli/agent-control.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { startAgent, stopOnSignals } from '../../src/daemon/agent.js';
import type { StatusReply } from '../../src/transport/local-api.js';

export default class AgentStart extends BaseCommand {
  static override summary = "Start this host's daemon.";
  static override description = [
    'Starts the daemon in the background and waits until it answers. On first start with no',
    'configuration it creates a single-host workspace listening on loopback (agent.listen).',
    'With --foreground it runs in this process until stopped (for systemd and containers).',
  ].join('\n');
  static override examples = ['<%= config.bin %> agent start', '<%= config.bin %> agent start --foreground', 'CMDOP_HOME=/srv/cmdop-b <%= config.bin %> agent start --json'];
  static override flags = {
    foreground: Flags.boolean({ description: 'Run in this process; log to stderr as well as agent.log.' }),
    quiet: Flags.boolean({ description: 'With --foreground: do not echo the log to stderr.', hidden: true }),
  };

  async run(): Promise<{ already_running: boolean; status: StatusReply } | { stopped: true }> {
    const { flags } = await this.parse(AgentStart);
    const home = resolveCmdopHome();
    if (flags.foreground) {
      const agent = await startAgent({ home, echoLog: !flags.quiet && !this.jsonEnabled(), debug: flags.debug });
      stopOnSignals(agent);
      await agent.stopped;
      // Everything is closed and flushed; gRPC and ws internals may hold timers a while longer.
      setTimeout(() => process.exit(), 50);
      return { stopped: true };
    }
    const result = await startInBackground(home, (text) => {
      if (!this.jsonEnabled()) process.stderr.write(`${text}\n`);
    });
    if (!this.jsonEnabled()) {
      const s = result.status;
      this.log(`${result.already_running ? 'already running' : 'started'}: ${s.host_name} (pid ${s.pid}), workspace "${s.workspace.name}", listening on ${s.listen_address}`);
    }
    return result;
  }
}
