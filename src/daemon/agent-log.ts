/**
 * The daemon's own log, `CMDOP_HOME/logs/agent.log` (JSON lines, 0600, rotated at 5 MB with
 * three backups). It says what the daemon did (started, listened, peers found, errors); what
 * callers did goes in the audit log, not here.
 */
import { createStream, type RotatingFileStream } from 'rotating-file-stream';
import { basename, dirname } from 'node:path';
import { redactTarget } from '../audit/audit-record.js';
import { ensurePrivateDir } from '../config/cmdop-home.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

export interface AgentLog {
  debug(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  info(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  warn(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  error(msg: string, fields?: Readonly<Record<string, unknown>>): void;
  close(): Promise<void>;
}

export interface AgentLogOptions {
  readonly path: string;
  /** Also write each line to stderr (the daemon in the foreground, under systemd). */
  readonly echo?: boolean;
  readonly debug?: boolean;
}

export async function openAgentLog(options: AgentLogOptions): Promise<AgentLog> {
  await ensurePrivateDir(dirname(options.path));
  const stream: RotatingFileStream = createStream(basename(options.path), {
    path: dirname(options.path),
    size: '5M',
    maxFiles: 3,
    mode: 0o600,
  });
  // A log that cannot be written must not bring the daemon down; the audit log is what fails closed.
  stream.on('error', () => undefined);
  const write = (level: LogLevel, msg: string, fields?: Readonly<Record<string, unknown>>): void => {
    if (level === 'debug' && options.debug !== true) return;
    const line = `${JSON.stringify({ ts: new Date().toISOString(), level, msg, ...fields }, logReplacer)}\n`;
    stream.write(line);
    if (options.echo === true) process.stderr.write(line);
  };
  return {
    debug: (msg, fields) => {
      write('debug', msg, fields);
    },
    info: (msg, fields) => {
      write('info', msg, fields);
    },
    warn: (msg, fields) => {
      write('warn', msg, fields);
    },
    error: (msg, fields) => {
      write('error', msg, fields);
    },
    close: () =>
      new Promise((resolveClose) => {
        stream.end(() => {
          resolveClose();
        });
      }),
  };
}

/**
 * Errors become plain objects, and every string goes through the audit log's redaction: a rule
 * or an error message can quote a command line, and a command line can hold a secret.
 */
function logReplacer(_key: string, value: unknown): unknown {
  if (typeof value === 'string') return redactTarget(value);
  if (value instanceof Error) return { name: value.name, message: value.message, ...(value.stack === undefined ? {} : { stack: value.stack }) };
  return value;
}
