/** Where the daemon keeps its runtime and membership files under `CMDOP_HOME` (DESIGN.md §5). */
import { join } from 'node:path';
import { logsDir, runDir } from '../config/cmdop-home.js';
import { LOCAL_SOCKET_FILE, LOCAL_TOKEN_FILE, PID_FILE } from '../transport/local-api.js';

export function socketPath(home: string): string {
  return join(runDir(home), LOCAL_SOCKET_FILE);
}

export function localTokenPath(home: string): string {
  return join(runDir(home), LOCAL_TOKEN_FILE);
}

export function pidPath(home: string): string {
  return join(runDir(home), PID_FILE);
}

export function agentLogPath(home: string): string {
  return join(logsDir(home), 'agent.log');
}

/** The roster: every known host of the workspace, with manual overrides (`peers.json`, 0600). */
export function peersPath(home: string): string {
  return join(home, 'peers.json');
}

/** Which workspace this host belongs to and where its CA host answers (`workspace.json`, 0600). */
export function membershipPath(home: string): string {
  return join(home, 'workspace.json');
}
