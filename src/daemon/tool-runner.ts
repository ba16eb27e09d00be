/**
 * The four tools as the daemon runs them for a caller, remote (over mTLS) or local (over the
 * socket): each turns its request into the gate's request, runs the executor with the approval
 * and reports its outcome for the audit log.
 */
import type { Caller } from '../gate/caller.js';
import { executeCommand, type ExecuteCommandResult } from '../tools/execute-command.js';
import { listDirTool, type ListDirResult } from '../tools/list-dir.js';
import { readFileTool, type ReadFileResult } from '../tools/read-file.js';
import { writeFileTool, type WriteFileResult } from '../tools/write-file.js';
import type { ExecuteCommandRequest, ListDirRequest, ReadFileRequest, WriteFileRequest } from '../transport/mesh-handler.js';
import { gatedCall, type GateDeps, type GatedResult } from './gated-call.js';

export function runExecute(deps: GateDeps, caller: Caller, request: ExecuteCommandRequest, signal: AbortSignal): Promise<GatedResult<ExecuteCommandResult>> {
  return gatedCall(
    deps,
    caller,
    { tool: 'execute_command', target: request.command, ...(request.cwd === undefined || request.cwd === '' ? {} : { cwd: request.cwd }) },
    request,
    signal,
    (approval) =>
      executeCommand(approval, {
        command: request.command,
        ...(request.cwd === undefined || request.cwd === '' ? {} : { cwd: request.cwd }),
        ...(request.timeout_ms === undefined ? {} : { timeoutMs: request.timeout_ms }),
        signal,
      }),
    (r) => ({
      status: r.exit_code === 0 ? 'ok' : r.aborted ? 'interrupted' : 'failed',
      ...(r.exit_code === null ? {} : { exit_code: r.exit_code }),
      truncated: r.truncated.stdout || r.truncated.stderr,
      ...(r.timed_out ? { error: 'timed out' } : r.signal === null ? {} : { error: `ended by ${r.signal}` }),
    }),
  );
}

export function runRead(deps: GateDeps, caller: Caller, request: ReadFileRequest, signal: AbortSignal): Promise<GatedResult<ReadFileResult>> {
  return gatedCall(
    deps,
    caller,
    { tool: 'read_file', target: request.path },
    request,
    signal,
    (approval) =>
      readFileTool(approval, {
        path: request.path,
        ...(request.offset === undefined ? {} : { offset: request.offset }),
        ...(request.length === undefined ? {} : { length: request.length }),
      }),
    (r) => ({ status: 'ok', truncated: r.truncated }),
  );
}

export function runWrite(deps: GateDeps, caller: Caller, request: WriteFileRequest, signal: AbortSignal): Promise<GatedResult<WriteFileResult>> {
  return gatedCall(
    deps,
    caller,
    { tool: 'write_file', target: request.path },
    // The digest covers the content; the content itself never reaches the log.
    { path: request.path, content: request.content, mode: request.mode },
    signal,
    (approval) => writeFileTool(approval, { path: request.path, content: request.content, ...(request.mode === undefined ? {} : { mode: request.mode }) }),
    () => ({ status: 'ok' }),
  );
}

export function runList(deps: GateDeps, caller: Caller, request: ListDirRequest, signal: AbortSignal): Promise<GatedResult<ListDirResult>> {
  return gatedCall(
    deps,
    caller,
    { tool: 'list_dir', target: request.path },
    request,
    signal,
    (approval) => listDirTool(approval, { path: request.path }),
    (r) => ({ status: 'ok', truncated: r.truncated }),
  );
}
