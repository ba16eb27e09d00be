/**
 * Calls that arrive on the local socket: to this host (the local operator, not gated; the
 * daemon still audits them) or to a peer, through this host's mTLS client and the peer's gate.
 * Both answer in the local API's shape.
 */
import { CmdopError } from '../errors.js';
import type { Caller } from '../gate/caller.js';
import type { GateDecision } from '../gate/types.js';
import type { ExecuteCommandResult } from '../tools/execute-command.js';
import type { ListDirResult } from '../tools/list-dir.js';
import type { ReadFileResult } from '../tools/read-file.js';
import type { WriteFileResult } from '../tools/write-file.js';
import type { CallReply, CallRequest, ExecuteCommandOutput, ListDirOutput, ReadFileOutput, WriteFileOutput } from '../transport/local-api.js';
import { wireDecision, type GateDeps } from './gated-call.js';
import type { MeshClient } from '../transport/grpc-client.js';
import type { PeerDirectory } from './peer-directory.js';
import { runExecute, runList, runRead, runWrite } from './tool-runner.js';

export async function callLocally(deps: GateDeps, caller: Caller, hostName: string, call: CallRequest, signal: AbortSignal): Promise<CallReply> {
  switch (call.tool) {
    case 'execute_command': {
      const r = await runExecute(deps, caller, { command: call.request.command, ...optional('cwd', call.request.cwd), ...optional('timeout_ms', call.request.timeout_ms) }, signal);
      return reply(hostName, call.tool, r.decision, executeOutput(r.result));
    }
    case 'read_file': {
      const r = await runRead(deps, caller, { path: call.request.path, ...optional('offset', call.request.offset), ...optional('length', call.request.length) }, signal);
      return reply(hostName, call.tool, r.decision, readOutput(r.result));
    }
    case 'write_file': {
      const r = await runWrite(deps, caller, { path: call.request.path, content: Buffer.from(call.request.content_base64, 'base64'), ...optional('mode', call.request.mode) }, signal);
      return reply(hostName, call.tool, r.decision, writeOutput(r.result));
    }
    case 'list_dir': {
      const r = await runList(deps, caller, { path: call.request.path }, signal);
      return reply(hostName, call.tool, r.decision, listOutput(r.result));
    }
  }
}

export async function callPeer(peers: PeerDirectory, call: CallRequest, signal: AbortSignal): Promise<CallReply> {
  const { client, name } = await peers.client(call.host);
  try {
    return await callThrough(client, name, call, signal);
  } catch (error) {
    // "ExecuteCommand on 10.0.0.5:8470 is unreachable" does not say which host that was.
    if (error instanceof CmdopError && error.code === 'unavailable') {
      throw new CmdopError('unavailable', `${name} is unreachable (${error.message})`, {
        cause: error,
        hint: error.hint ?? `Check that ${name}'s daemon runs (cmdop agent status there), or see \`cmdop peers list\`.`,
        ...(error.details === undefined ? {} : { details: error.details }),
      });
    }
    throw error;
  }
}

/** Makes a local-API tool call on a Mesh client of host `name`, answering in the local API's shape. */
export async function callThrough(client: MeshClient, name: string, call: CallRequest, signal: AbortSignal): Promise<CallReply> {
  switch (call.tool) {
    case 'execute_command': {
      const r = await client.executeCommand({ command: call.request.command, ...optional('cwd', call.request.cwd), ...optional('timeout_ms', call.request.timeout_ms) }, { signal });
      return reply(name, call.tool, r.decision, executeOutput(r));
    }
    case 'read_file': {
      const r = await client.readFile({ path: call.request.path, ...optional('offset', call.request.offset), ...optional('length', call.request.length) }, { signal });
      return reply(name, call.tool, r.decision, readOutput(r));
    }
    case 'write_file': {
      const r = await client.writeFile({ path: call.request.path, content: Buffer.from(call.request.content_base64, 'base64'), ...optional('mode', call.request.mode) }, { signal });
      return reply(name, call.tool, r.decision, writeOutput(r));
    }
    case 'list_dir': {
      const r = await client.listDir({ path: call.request.path }, { signal });
      return reply(name, call.tool, r.decision, listOutput(r));
    }
  }
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function reply<T extends CallRequest['tool']>(hostname: string, tool: T, decision: GateDecision, result: CallReply<T>['result']): CallReply<T> {
  return { hostname, tool, decision: wireDecision(decision), result };
}

function executeOutput(r: ExecuteCommandResult): ExecuteCommandOutput {
  return {
    exit_code: r.exit_code,
    signal: r.signal,
    stdout: r.stdout,
    stderr: r.stderr,
    stdout_truncated: r.truncated.stdout,
    stderr_truncated: r.truncated.stderr,
    timed_out: r.timed_out,
    duration_ms: r.duration_ms,
  };
}

function readOutput(r: ReadFileResult): ReadFileOutput {
  return {
    path: r.path,
    size: r.size,
    offset: r.offset,
    bytes: r.bytes,
    content_base64: r.encoding === 'base64' ? r.content : Buffer.from(r.content, 'utf8').toString('base64'),
    truncated: r.truncated,
    eof: r.eof,
  };
}

function writeOutput(r: WriteFileResult): WriteFileOutput {
  return { path: r.path, bytes: r.bytes, created: r.created };
}

function listOutput(r: ListDirResult): ListDirOutput {
  return { path: r.path, entries: r.entries.map((e) => ({ name: e.name, type: e.type, ...(e.size === undefined ? {} : { size: e.size }) })), truncated: r.truncated };
}
