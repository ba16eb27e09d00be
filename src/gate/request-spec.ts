/**
 * Parses `tool(target)` / `tool(operation:target)` as `cmdop permissions check` takes it. The
 * target is taken literally (unlike a rule's glob): it is what a caller would send.
 */
import { CmdopError } from '../errors.js';
import { TOOLS, TOOL_NAMES, isToolName, type GateRequest } from './types.js';

/** Parses one request written as `tool(target)`. Throws CmdopError('invalid_input') when malformed. */
export function parseRequestSpec(input: string): GateRequest {
  const text = input.trim();
  const open = text.indexOf('(');
  const usage = "Write it as tool(target), for example 'execute_command(git status)' or 'read_file(~/notes.txt)'.";
  if (open === -1 || !text.endsWith(')')) throw new CmdopError('invalid_input', `cannot read request ${JSON.stringify(input)}: expected tool(target)`, { hint: usage });
  const tool = text.slice(0, open);
  if (!isToolName(tool)) throw new CmdopError('invalid_input', `unknown tool "${tool}"`, { hint: `Known tools: ${TOOL_NAMES.join(', ')}.` });
  const body = text.slice(open + 1, -1);
  const operations = TOOLS[tool].operations;
  const colon = body.indexOf(':');
  if (operations.length > 0 && colon !== -1 && operations.includes(body.slice(0, colon))) {
    return { tool, operation: body.slice(0, colon), target: body.slice(colon + 1) };
  }
  return { tool, target: body };
}

/** Validates one `check --stdin` line's parsed JSON into a request. */
export function requestFromJson(value: unknown): GateRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new CmdopError('invalid_input', 'each line must be a JSON object like {"tool":"read_file","target":"/srv/x"}');
  }
  const record = value as Record<string, unknown>;
  const { tool, operation, target, cwd } = record;
  for (const key of Object.keys(record)) {
    if (!['tool', 'operation', 'target', 'cwd'].includes(key)) throw new CmdopError('invalid_input', `unknown field "${key}"; the fields are tool, operation, target, cwd`);
  }
  if (typeof tool !== 'string' || !isToolName(tool)) throw new CmdopError('invalid_input', `"tool" must be one of ${TOOL_NAMES.join(', ')}`);
  if (typeof target !== 'string') throw new CmdopError('invalid_input', '"target" must be a string');
  if (operation !== undefined && typeof operation !== 'string') throw new CmdopError('invalid_input', '"operation" must be a string when given');
  if (cwd !== undefined && typeof cwd !== 'string') throw new CmdopError('invalid_input', '"cwd" must be a string when given');
  return { tool, target, operation, cwd };
}
