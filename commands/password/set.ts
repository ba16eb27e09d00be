import { BaseCommand } from '../../src/cli/base-command.js';
import { createPasswordAuditor, readPasswords, refusePasswordArguments } from '../../src/cli/password-guard.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { CmdopError } from '../../src/errors.js';
import { PASSWORD_MIN_LENGTH, passwordStatus, setPassword, type SetPasswordResult } from '../../src/identity/machine-password.js';

export default class PasswordSet extends BaseCommand {
  static override summary = 'Set or change the machine password.';
  static override description = [
    'Once set, this machine must be unlocked (cmdop password unlock) before its permissions change or it calls other hosts.',
    'Only a salted scrypt hash is stored, in CMDOP_HOME/password.json.',
    '',
    `The password (at least ${PASSWORD_MIN_LENGTH} characters) is read from standard input, never from the command line.`,
    'On a terminal you are asked for it twice, without echo.',
    'Otherwise the first line is the new password; when changing one, the current password comes first and the new one second.',
    'Changing the password ends the current unlock session.',
  ].join('\n');
  static override examples = [
    '<%= config.bin %> password set',
    `printf '%s\\n' "$NEW_PASSWORD" | <%= config.bin %> password set --json`,
    `printf '%s\\n%s\\n' "$CURRENT_PASSWORD" "$NEW_PASSWORD" | <%= config.bin %> password set`,
  ];

  // Not strict, so oclif hands stray words to run() (which refuses them unquoted) instead of
  // reading them as a subcommand name and printing them in its "not found" error.
  static override strict = false;

  async run(): Promise<SetPasswordResult> {
    refusePasswordArguments('password set', this.argv);
    await this.parse(PasswordSet);
    const home = resolveCmdopHome();
    const { set } = await passwordStatus(home);
    const tty = process.stdin.isTTY;
    const prompts = [...(set ? ['Current password: '] : []), 'New password: ', ...(tty ? ['Repeat the new password: '] : [])];
    const answers = await readPasswords(prompts);
    const current = set ? answers.shift() : undefined;
    const [fresh, repeated] = answers;
    if (tty && fresh !== repeated) throw new CmdopError('invalid_input', 'the two new passwords differ; nothing was changed', { hint: 'Run the command again.' });
    const result = await setPassword(home, fresh, current === undefined ? {} : { current }, { recordAttempt: createPasswordAuditor(home) });
    if (!this.jsonEnabled()) {
      this.log(result.changed ? 'machine password changed; the machine is locked' : 'machine password set; the machine is locked');
      process.stderr.write('Run `cmdop password unlock` before changing permissions or calling other hosts.\n');
    }
    return result;
  }
}
