import { writeFile } from 'node:fs/promises';
import { connectClient, credentialFlags } from '../../src/cli/connect-client.js';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { CmdopError, systemErrorCode } from '../../src/errors.js';
import type { ReadFileMetadata } from '../../src/client/index.js';
import type { WireGateDecision } from '../../src/transport/local-api.js';

interface ReadResult extends ReadFileMetadata {
  readonly hostname: string;
  readonly decision: WireGateDecision;
  /** `utf8` when the bytes are valid UTF-8, else `base64`; absent with --output. */
  readonly encoding?: 'utf8' | 'base64';
  readonly content?: string;
  /** The local file the bytes went to, with --output. */
  readonly output?: string;
}

export default class ConnectRead extends BaseCommand {
  static override summary = 'Read a file on a host of the workspace, through its gate.';
  static override description = [
    'Prints the bytes as they are, or writes them to --output. The host caps one read (1 MiB by default);',
    'when it cut the read, a note on stderr gives the --offset to continue from.',
    'With --json: the metadata and the content, as UTF-8 text when it is valid UTF-8, else base64 (see "encoding").',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> connect read vps-audi /etc/hostname',
    '<%= config.bin %> connect read vps-audi /var/log/app.log --offset 1048576 --length 65536',
    '<%= config.bin %> connect read vps-audi /srv/backup.tar --output backup.tar',
    '<%= config.bin %> connect read vps-audi /srv/app/.env.example --json',
  ];
  static override args = {
    host: Args.string({ description: 'The host to read from (its host name).', required: true, ignoreStdin: true }),
    path: Args.string({ description: 'The file on that host.', required: true, ignoreStdin: true }),
  };
  static override flags = {
    ...credentialFlags,
    offset: Flags.integer({ description: 'First byte to read.', min: 0 }),
    length: Flags.integer({ description: 'Bytes to read at most.', min: 0 }),
    output: Flags.string({ char: 'o', description: 'Write the bytes to this local file instead of stdout.' }),
  };

  async run(): Promise<ReadResult> {
    const { args, flags } = await this.parse(ConnectRead);
    const reply = await (await connectClient(flags)).readFile(args.host, args.path, {
      ...(flags.offset === undefined ? {} : { offset: flags.offset }),
      ...(flags.length === undefined ? {} : { length: flags.length }),
    });
    const meta = reply.result;
    if (flags.output !== undefined) await saveTo(flags.output, reply.content);
    else if (!this.jsonEnabled()) process.stdout.write(reply.content);
    if (meta.truncated && !this.jsonEnabled()) {
      const next = meta.offset + meta.bytes;
      process.stderr.write(`[truncated] read ${meta.bytes} bytes from offset ${meta.offset} of ${meta.size}; continue with --offset ${next}\n`);
    }
    const base = { hostname: reply.hostname, ...meta, decision: reply.decision };
    if (flags.output !== undefined) return { ...base, output: flags.output };
    const text = utf8(reply.content);
    return text === undefined ? { ...base, encoding: 'base64', content: reply.content.toString('base64') } : { ...base, encoding: 'utf8', content: text };
  }
}

function utf8(bytes: Buffer): string | undefined {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return undefined;
  }
}

async function saveTo(file: string, content: Buffer): Promise<void> {
  try {
    await writeFile(file, content);
  } catch (error) {
    const code = systemErrorCode(error);
    throw new CmdopError(code === 'ENOENT' ? 'not_found' : 'invalid_input', `cannot write ${file}: ${code ?? String(error)}`, {
      cause: error,
      hint: 'Check that its directory exists and is writable by you.',
      details: { path: file },
    });
  }
}
