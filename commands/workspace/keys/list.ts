import { BaseCommand } from '../../../src/cli/base-command.js';
import { resolveCmdopHome } from '../../../src/config/cmdop-home.js';
import { apiKeysPath, listApiKeys, type ApiKeyInfo } from '../../../src/identity/api-key.js';

interface ListResult {
  readonly file: string;
  readonly keys: readonly ApiKeyInfo[];
}

export default class WorkspaceKeysList extends BaseCommand {
  static override summary = "List this CA host's workspace API keys.";
  static override description = [
    "Shows each key's name, id, creation, last use (to the minute), expiry and revocation; never the key or its hash, which cannot be shown again. Last use is a call to this, the CA host: other hosts verify keys from their own copy of the hashes and do not report back, so their audit logs say who called them.",
    'Exit codes: 0 listed (also when there are none); 6 the key file is damaged or not private.',
  ].join('\n\n');
  static override examples = ['<%= config.bin %> workspace keys list', '<%= config.bin %> workspace keys list --json'];

  async run(): Promise<ListResult> {
    await this.parse(WorkspaceKeysList);
    const home = resolveCmdopHome();
    const result: ListResult = { file: apiKeysPath(home), keys: await listApiKeys(home) };
    if (!this.jsonEnabled()) this.log(render(result));
    return result;
  }
}

function render(result: ListResult): string {
  if (result.keys.length === 0) return 'no API keys; create one with `cmdop workspace keys create --name NAME` on the CA host';
  const header = ['NAME', 'ID', 'CREATED', 'LAST USED', 'EXPIRES', 'STATE'];
  const rows = result.keys.map((key) => [
    key.name,
    key.id,
    key.created_at,
    key.last_used_at ?? 'never',
    key.expires_at ?? 'never',
    key.revoked_at === null ? key.state : `revoked ${key.revoked_at}`,
  ]);
  const widths = header.map((title, i) => Math.max(title.length, ...rows.map((row) => row[i]?.length ?? 0)));
  return [header, ...rows].map((row) => row.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join('  ').trimEnd()).join('\n');
}
