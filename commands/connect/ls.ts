import { Args } from '@oclif/core';
import { connectClient, credentialFlags } from '../../src/cli/connect-client.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import type { ListDirOutput, WireGateDecision } from '../../src/transport/local-api.js';

interface LsResult extends ListDirOutput {
  readonly hostname: string;
  readonly decision: WireGateDecision;
}

export default class ConnectLs extends BaseCommand {
  static override summary = 'List a directory on a host of the workspace, through its gate.';
  static override description = 'Prints one entry per line: type, size in bytes (blank when the host gives none), name.';
  static override examples = ['<%= config.bin %> connect ls vps-audi /srv/app', '<%= config.bin %> connect ls vps-audi /var/log --json'];
  static override flags = { ...credentialFlags };
  static override args = {
    host: Args.string({ description: 'The host to list on (its host name).', required: true, ignoreStdin: true }),
    path: Args.string({ description: 'The directory on that host.', required: true, ignoreStdin: true }),
  };

  async run(): Promise<LsResult> {
    const { args, flags } = await this.parse(ConnectLs);
    const reply = await (await connectClient(flags)).listDir(args.host, args.path);
    const result: LsResult = { hostname: reply.hostname, ...reply.result, decision: reply.decision };
    if (!this.jsonEnabled()) {
      this.log(renderEntries(result));
      if (result.truncated) process.stderr.write(`[truncated] ${result.hostname} listed only the first ${result.entries.length} entries\n`);
    }
    return result;
  }
}

function renderEntries(result: LsResult): string {
  if (result.entries.length === 0) return `${result.hostname}:${result.path} is empty`;
  const sizes = result.entries.map((e) => (e.size === undefined ? '' : String(e.size)));
  const sizeWidth = Math.max(4, ...sizes.map((s) => s.length));
  const typeWidth = 7;
  const lines = [`${'TYPE'.padEnd(typeWidth)}  ${'SIZE'.padStart(sizeWidth)}  NAME`];
  result.entries.forEach((entry, i) => {
    const name = entry.type === 'dir' ? `${printable(entry.name)}/` : printable(entry.name);
    lines.push(`${entry.type.padEnd(typeWidth)}  ${(sizes[i] ?? '').padStart(sizeWidth)}  ${name}`);
  });
  return lines.join('\n');
}

/** A remote name may hold control characters; shown escaped, they cannot drive the terminal. */
function printable(name: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters is the point
  return name.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}
