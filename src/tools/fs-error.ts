/**
 * Node's file-system errors turned into CmdopErrors, in one place, so every tool reports a
 * missing file as not_found (exit 4) and an operating-system refusal as a tool failure (exit 5):
 * "denied" (exit 3) is kept for the permission gate.
 */
import { CmdopError, systemErrorCode } from '../errors.js';

/** Wraps an error from `action` on `path` (a CmdopError passes through unchanged). */
export function fsError(error: unknown, action: string, path: string): CmdopError {
  if (error instanceof CmdopError) return error;
  const code = systemErrorCode(error);
  const cause = { cause: error, details: { path, ...(code === undefined ? {} : { errno: code }) } };
  switch (code) {
    case 'ENOENT':
    case 'ENOTDIR':
      return new CmdopError('not_found', `cannot ${action} ${path}: it does not exist`, { ...cause, hint: 'Check the path; list the directory to see what is there.' });
    case 'EACCES':
    case 'EPERM':
      return new CmdopError('tool_failed', `cannot ${action} ${path}: the operating system refused (${code})`, { ...cause, hint: 'The daemon runs as a user without access to it; this is file permissions, not the gate.' });
    case 'ELOOP':
      return new CmdopError('tool_failed', `cannot ${action} ${path}: too many levels of symbolic links`, cause);
    case 'ENOSPC':
    case 'EDQUOT':
      return new CmdopError('tool_failed', `cannot ${action} ${path}: no space left (${code})`, cause);
    case 'EROFS':
      return new CmdopError('tool_failed', `cannot ${action} ${path}: the file system is read-only`, cause);
    default: {
      const why = code ?? (error instanceof Error ? error.message : String(error));
      return new CmdopError('tool_failed', `cannot ${action} ${path}: ${why}`, cause);
    }
  }
}
