import { BaseCommand } from '../../src/cli/base-command.js';
import { loadHostPolicy, openHostContext, runPolicyTests, type PolicyTestResult } from '../../src/cli/host-context.js';
import { renderTestResults } from '../../src/cli/render.js';

interface TestRun {
  readonly passed: number;
  readonly failed: number;
  readonly results: readonly PolicyTestResult[];
}

export default class PermissionsTest extends BaseCommand {
  static override summary = 'Run the tests: section of permissions.yaml through the gate.';
  static override description = 'Each test names a request and the decision it must get, as a remote peer would be decided. Exits 0 when all pass, 6 (configuration error) when any fails.';
  static override examples = ['<%= config.bin %> permissions test', '<%= config.bin %> permissions test --json'];

  async run(): Promise<TestRun> {
    await this.parse(PermissionsTest);
    const context = await openHostContext();
    const { doc, config } = await loadHostPolicy(context);
    const results = runPolicyTests(context, doc, config);
    const failed = results.filter((r) => !r.pass).length;
    if (!this.jsonEnabled()) this.log(renderTestResults(results));
    if (failed > 0) this.setExitCode('config');
    return { passed: results.length - failed, failed, results };
  }
}
