import { Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { parseDuration } from '../../src/cli/duration.js';
import { createPasswordAuditor, readPasswords, refusePasswordArguments } from '../../src/cli/password-guard.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { unlock, type UnlockResult } from '../../src/identity/machine-password.js';

export default class PasswordUnlock extends BaseCommand {
  static override summary = 'Unlock this machine for a while with its password.';
  static override description = [
    'Reads the password from standard input: asked for without echo on a terminal, else the first line.',
    'A wrong password exits 3 and makes the next attempt wait 1 s, 2 s, 4 s ... up to 30 s, across all cmdop processes.',
    'An attempt during that wait exits 8 without being checked. Every attempt goes to the audit log, never the password.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> password unlock',
    '<%= config.bin %> password unlock --ttl 1h',
    `printf '%s\\n' "$PASSWORD" | <%= config.bin %> password unlock --json`,
  ];
  static override flags = {
    ttl: Flags.string({ description: 'How long the machine stays unlocked (30s, 15m, 2h; at most 24h).', default: '15m' }),
  };

  // Not strict, so oclif hands stray words to run() (which refuses them unquoted) instead of
  // reading them as a subcommand name and printing them in its "not found" error.
  static override strict = false;

  async run(): Promise<UnlockResult> {
    refusePasswordArguments('password unlock', this.argv, ['--ttl']);
    const { flags } = await this.parse(PasswordUnlock);
    const ttlMs = parseDuration(flags.ttl, '--ttl');
    const home = resolveCmdopHome();
    const [password] = await readPasswords(['Password: ']);
    const result = await unlock(home, password, { ttlMs }, { recordAttempt: createPasswordAuditor(home) });
    if (!this.jsonEnabled()) this.log(`unlocked until ${result.unlocked_until}`);
    return result;
  }
}
