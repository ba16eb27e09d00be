import { BaseCommand } from '../../src/cli/base-command.js';
import { createPasswordAuditor, readPasswords, refusePasswordArguments } from '../../src/cli/password-guard.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { clearPassword, type ClearPasswordResult } from '../../src/identity/machine-password.js';

export default class PasswordClear extends BaseCommand {
  static override summary = 'Remove the machine password (needs the current one).';
  static override description = [
    'Reads the current password from standard input: asked for without echo on a terminal, else the first line.',
    'A wrong one is refused, slowed down and audited like an unlock.',
  ].join('\n');
  static override examples = ['<%= config.bin %> password clear', `printf '%s\\n' "$CURRENT_PASSWORD" | <%= config.bin %> password clear --json`];

  // Not strict, so oclif hands stray words to run() (which refuses them unquoted) instead of
  // reading them as a subcommand name and printing them in its "not found" error.
  static override strict = false;

  async run(): Promise<ClearPasswordResult> {
    refusePasswordArguments('password clear', this.argv);
    await this.parse(PasswordClear);
    const home = resolveCmdopHome();
    const [current] = await readPasswords(['Current password: ']);
    const result = await clearPassword(home, current, { recordAttempt: createPasswordAuditor(home) });
    if (!this.jsonEnabled()) this.log('machine password removed');
    return result;
  }
}
