import { BaseCommand } from '../../src/cli/base-command.js';
import { createClient } from '../../src/client/local-client.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { readRoster } from '../../src/daemon/roster.js';
import { CmdopError } from '../../src/errors.js';
import type { PeerEntry } from '../../src/transport/local-api.js';

export default class PeersList extends BaseCommand {
  static override summary = 'List the hosts of the workspace: name, address, online, last seen.';
  static override description = 'With the daemon stopped, lists the roster file and shows every host offline.';
  static override examples = ['<%= config.bin %> peers list', '<%= config.bin %> peers list --json'];

  async run(): Promise<{ daemon_running: boolean; peers: readonly PeerEntry[] }> {
    await this.parse(PeersList);
    const home = resolveCmdopHome();
    let peers: readonly PeerEntry[];
    let running = true;
    try {
      peers = (await createClient({ home }).peers()).peers;
    } catch (error) {
      if (!(error instanceof CmdopError) || error.code !== 'unavailable') throw error;
      running = false;
      peers = (await readRoster(home)).map((r) => ({ name: r.name, address: r.address, online: false, last_seen: r.last_seen, source: r.source }));
    }
    if (!this.jsonEnabled()) {
      if (!running) process.stderr.write('the daemon is not running; showing the roster file\n');
      const rows = peers.map((p) => [p.name, p.address === '' ? '-' : p.address, p.online ? 'online' : 'offline', p.last_seen ?? 'never', p.source]);
      const header = ['NAME', 'ADDRESS', 'STATE', 'LAST SEEN', 'SOURCE'];
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
      for (const row of [header, ...rows]) this.log(row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd());
    }
    return { daemon_running: running, peers };
  }
}
