import { BaseCommand } from '../../src/cli/base-command.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { passwordStatus, type PasswordStatus } from '../../src/identity/machine-password.js';

export default class PasswordStatusCommand extends BaseCommand {
  static override summary = 'Show whether a machine password is set and whether the machine is unlocked.';
  static override description = 'Also shows wrong passwords in a row and when the next attempt is accepted.';
  static override examples = ['<%= config.bin %> password status', '<%= config.bin %> password status --json'];

  async run(): Promise<PasswordStatus> {
    await this.parse(PasswordStatusCommand);
    const status = await passwordStatus(resolveCmdopHome());
    if (!this.jsonEnabled()) {
      if (!status.set) this.log('password  not set');
      else {
        const lines = [`password  set at ${status.set_at ?? '?'}`, `state     ${status.unlocked ? `unlocked until ${status.unlocked_until ?? '?'}` : 'locked'}`];
        if (status.failures > 0) lines.push(`wrong     ${status.failures} in a row${status.retry_at === null ? '' : `; next attempt after ${status.retry_at}`}`);
        this.log(lines.join('\n'));
      }
    }
    return status;
  }
}
