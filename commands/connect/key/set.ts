import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../../src/cli/base-command.js';
import { CmdopError } from '../../../src/errors.js';
import { resolveCmdopHome } from '../../../src/config/cmdop-home.js';
import { saveWorkspaceKey, type StoredWorkspace } from '../../../src/client/workspace-keys.js';

interface KeySetResult extends StoredWorkspace {
  readonly principal: string;
  readonly active: true;
  /** Where the key itself is kept: `keyring` (the OS keyring) or `file` (ssh_workspaces.json, 0600). */
  readonly store: 'keyring' | 'file';
  readonly store_location: string;
}

export default class ConnectKeySet extends BaseCommand {
  static override summary = 'Store a workspace API key on this machine, and make its workspace the active one.';
  static override description = [
    'The key goes into the OS keyring, or into CMDOP_HOME/ssh_workspaces.json (0600) where no keyring is available. From then on the connect verbs call hosts with it (as key:NAME) unless --api-key, CMDOP_API_KEY or --workspace says otherwise; `cmdop whoami` shows the choice. The key is never printed.',
    'The key carries the workspace CA fingerprint (hosts are checked against it) and, from keys made by this version, the workspace name and the CA host\'s address.',
    'Exit codes: 0 stored; 2 not an API key, or no workspace name to store it under; 6 the secret store cannot be used (a loose or damaged file, a forced keyring that is not there); 7 the OS keyring stopped answering mid-write.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> connect key set cmdop-key.eyJ2Ijox…',
    'printf %s "$CI_CMDOP_KEY" | <%= config.bin %> connect key set - --workspace acme --json',
  ];
  static override args = {
    key: Args.string({ description: 'The API key, as `cmdop workspace keys create` printed it, or - to read it from stdin (keeps it out of the process list).', required: true, ignoreStdin: true }),
  };
  static override flags = {
    workspace: Flags.string({ description: 'The workspace to store the key under (default: the name the key carries).' }),
  };

  async run(): Promise<KeySetResult> {
    const { args, flags } = await this.parse(ConnectKeySet);
    const key = args.key === '-' ? await readStdin() : args.key;
    const { entry, store } = await saveWorkspaceKey(resolveCmdopHome(), key, {
      workspace: flags.workspace,
      notice: (line) => process.stderr.write(`note: ${line}\n`),
    });
    const result: KeySetResult = { ...entry, principal: `key:${entry.key_name}`, active: true, store: store.kind, store_location: store.location };
    if (!this.jsonEnabled()) {
      this.log(`stored the API key "${entry.key_name}" for workspace "${entry.name}" in ${store.kind === 'keyring' ? `the OS keyring (${store.location})` : store.location}; "${entry.name}" is now the active workspace`);
    }
    return result;
  }
}

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += String(chunk);
  if (text.length > 4096) throw new CmdopError('invalid_input', 'stdin holds more than an API key', { hint: 'Pipe in the key alone.' });
  return text.trim();
}
