import { Flags } from '@oclif/core';
import { followAudit, parseSince, readAudit, type AuditFilter, type AuditReadProblem } from '../../src/audit/audit-reader.js';
import { AUDIT_DECISIONS, type AuditRecord } from '../../src/audit/audit-record.js';
import { BaseCommand } from '../../src/cli/base-command.js';
import { openHostContext } from '../../src/cli/host-context.js';
import { logsDir } from '../../src/config/cmdop-home.js';
import { TOOL_NAMES } from '../../src/gate/types.js';

export default class PermissionsAudit extends BaseCommand {
  static override summary = "Read this host's audit log: every gated call, its decision and its outcome.";
  static override description = 'Reads logs/audit.log and its rotated files, oldest first. A torn last line (left by a crash) is skipped and reported on stderr. --json prints one JSON object per line, for jq.';
  static override examples = [
    '<%= config.bin %> permissions audit',
    '<%= config.bin %> permissions audit -n 100 --since 1h',
    '<%= config.bin %> permissions audit --decision deny --since 24h',
    "<%= config.bin %> permissions audit --json | jq -r 'select(.decision == \"deny\") | .target'",
    '<%= config.bin %> permissions audit --follow --tool execute_command',
  ];
  static override flags = {
    lines: Flags.integer({ char: 'n', description: 'Show the last N records.', default: 20, min: 1 }),
    since: Flags.string({ description: 'Only records since this long ago (30s, 15m, 1h, 24h, 7d) or since an ISO time.' }),
    tool: Flags.string({ description: 'Only records of this tool.', options: [...TOOL_NAMES] }),
    decision: Flags.string({ description: 'Only records with this decision.', options: [...AUDIT_DECISIONS] }),
    follow: Flags.boolean({ char: 'f', description: 'Keep printing new records as they are written (Ctrl-C to stop).' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(PermissionsAudit);
    const context = await openHostContext();
    const dir = logsDir(context.cmdopHome);
    const filter: AuditFilter = {
      since: flags.since === undefined ? undefined : parseSince(flags.since, new Date()),
      tool: flags.tool,
      decision: flags.decision,
    };
    const print = (record: AuditRecord): void => {
      process.stdout.write(`${this.jsonEnabled() ? JSON.stringify(record) : formatRecord(record)}\n`);
    };
    const report = (problem: AuditReadProblem): void => {
      process.stderr.write(`skipped ${problem.kind.replaceAll('_', ' ')} in ${problem.file} line ${problem.line}\n`);
    };
    if (!flags.follow) {
      const { records, problems } = await readAudit({ dir, filter: { ...filter, last: flags.lines } });
      problems.forEach(report);
      records.forEach(print);
      return;
    }
    const controller = new AbortController();
    process.once('SIGINT', () => { controller.abort(); });
    process.once('SIGTERM', () => { controller.abort(); });
    // The last -n records and what follows them come from one read, so a record written between
    // the two is neither missed nor printed twice.
    await followAudit({ dir, filter, backlog: flags.lines, signal: controller.signal, onRecord: print, onProblem: report });
  }
}

function formatRecord(r: AuditRecord): string {
  const op = r.operation === null ? '' : `${r.operation}:`;
  if (r.event === 'outcome') {
    const code = r.outcome.exit_code === undefined ? '' : ` exit ${r.outcome.exit_code}`;
    return `${r.ts}  outcome   ${r.outcome.status}${code}  ${r.tool}(${op}${r.target})  call ${r.call_id}`;
  }
  return `${r.ts}  ${r.decision.padEnd(11)} ${r.tool}(${op}${r.target})  by ${r.hostname === '-' ? `${r.user}${r.address === undefined ? '' : ` (from ${r.address})`}` : `${r.user}@${r.hostname}`}  [${r.source}${r.rule === null ? '' : `: ${r.rule}`}]  ${r.reason}`;
}
