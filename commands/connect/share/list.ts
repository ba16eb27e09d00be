import { BaseCommand } from '../../../src/cli/base-command.js';
import { resolveCmdopHome } from '../../../src/config/cmdop-home.js';
import { listShares, sharesPath, type ShareInfo } from '../../../src/identity/share-link.js';

interface ListResult {
  readonly file: string;
  readonly shares: readonly ShareInfo[];
}

export default class ConnectShareList extends BaseCommand {
  static override summary = "List this host's share links.";
  static override description = [
    "Shows each link's id, host, creation, expiry, last use (to the minute) and state (active, expired or revoked); never the link or its hash, which cannot be shown again.",
    'Exit codes: 0 listed (also when there are none); 6 the share file is damaged or not private.',
  ].join('\n\n');
  static override examples = ['<%= config.bin %> connect share list', '<%= config.bin %> connect share list --json'];

  async run(): Promise<ListResult> {
    await this.parse(ConnectShareList);
    const home = resolveCmdopHome();
    const result: ListResult = { file: sharesPath(home), shares: await listShares(home) };
    if (!this.jsonEnabled()) this.log(render(result.shares));
    return result;
  }
}

function render(shares: readonly ShareInfo[]): string {
  if (shares.length === 0) return 'no share links; mint one with `cmdop connect share HOST` (HOST: this host)';
  const header = ['ID', 'HOST', 'CREATED', 'EXPIRES', 'LAST USED', 'STATE'];
  const rows = shares.map((share) => [
    share.id,
    share.host,
    share.created_at,
    share.expires_at,
    share.last_used_at ?? 'never',
    share.revoked_at === null ? share.state : `revoked ${share.revoked_at}`,
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
