import { readFile } from 'node:fs/promises';
import { connectClient, credentialFlags } from '../../src/cli/connect-client.js';
import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { CmdopError, systemErrorCode } from '../../src/errors.js';
import type { WireGateDecision, WriteFileOutput } from '../../src/transport/local-api.js';

interface WriteResult extends WriteFileOutput {
  readonly hostname: string;
  readonly decision: WireGateDecision;
}

export default class ConnectWrite extends BaseCommand {
  static override summary = 'Write a file on a host of the workspace, through its gate.';
  static override description = [
    'The content comes from --from FILE, or from standard input. The file on the host is replaced as a whole.',
    'write_file is a dangerous tool: the host\'s gate decides, and may ask its operator.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> connect write vps-audi /srv/app/config.json --from ./config.json',
    "echo 'hello' | <%= config.bin %> connect write vps-audi /tmp/greeting.txt",
    '<%= config.bin %> connect write vps-audi /srv/app/run.sh --from run.sh --mode 755 --json',
  ];
  static override args = {
    host: Args.string({ description: 'The host to write on (its host name).', required: true, ignoreStdin: true }),
    path: Args.string({ description: 'The file on that host.', required: true, ignoreStdin: true }),
  };
  static override flags = {
    ...credentialFlags,
    from: Flags.string({ description: 'Local file to send (- or absent: standard input).' }),
    mode: Flags.string({ description: 'Permission bits of the file, in octal (644, 0600).' }),
  };

  async run(): Promise<WriteResult> {
    const { args, flags } = await this.parse(ConnectWrite);
    const mode = flags.mode === undefined ? undefined : parseMode(flags.mode);
    const content = flags.from === undefined || flags.from === '-' ? await readStdin() : await readLocal(flags.from);
    const reply = await (await connectClient(flags)).writeFile(args.host, args.path, content, mode === undefined ? {} : { mode });
    const result: WriteResult = { hostname: reply.hostname, ...reply.result, decision: reply.decision };
    if (!this.jsonEnabled()) this.log(`${result.created ? 'created' : 'replaced'} ${result.hostname}:${result.path} (${result.bytes} bytes)`);
    return result;
  }
}

function parseMode(text: string): number {
  if (!/^0?[0-7]{3}$/.test(text)) {
    throw new CmdopError('invalid_input', `--mode ${text} is not an octal file mode`, { hint: 'Give three octal digits such as 644 or 600 (a leading 0 is fine).' });
  }
  return Number.parseInt(text, 8);
}

async function readLocal(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = systemErrorCode(error);
    throw new CmdopError(code === 'ENOENT' ? 'not_found' : 'invalid_input', `cannot read ${file}: ${code ?? String(error)}`, {
      cause: error,
      hint: code === 'ENOENT' ? 'Check the path given to --from.' : 'Check that it is a file you can read.',
      details: { path: file },
    });
  }
}

async function readStdin(): Promise<Buffer> {
  if (process.stdin.isTTY) {
    throw new CmdopError('invalid_input', 'nothing to write: give --from FILE, or pipe the content on standard input', {
      hint: "Example: cmdop connect write HOST /tmp/x.txt --from ./x.txt   or   echo hi | cmdop connect write HOST /tmp/x.txt",
    });
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks);
}
