import { BaseCommand } from '../../src/cli/base-command.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { lock, type LockResult } from '../../src/identity/machine-password.js';

export default class PasswordLock extends BaseCommand {
  static override summary = 'Lock this machine again now, ending the unlock session.';
  static override examples = ['<%= config.bin %> password lock', '<%= config.bin %> password lock --json'];

  async run(): Promise<LockResult> {
    await this.parse(PasswordLock);
    const result = await lock(resolveCmdopHome());
    if (!this.jsonEnabled()) this.log(result.removed ? 'locked' : 'locked (it was not unlocked)');
    return result;
  }
}
