/**
 * The names the workspace CA has ever certified (`tls/issued-names.json`, 0600, CA host only).
 * A name once issued is never issued to anyone else: the roster can be edited or lost, but a
 * second certificate for a name that exists would let its holder pass as that host.
 */
import { join } from 'node:path';
import { z } from 'zod';
import { updateStateFile } from '../config/file-lock.js';
import { readSecureFile } from '../config/secure-file.js';
import { CmdopError } from '../errors.js';
import { tlsDir } from '../identity/workspace-ca.js';

const schema = z.object({ version: z.literal(1), names: z.array(z.object({ name: z.string(), issued_at: z.string() }).strict()) }).strict();

function issuedPath(home: string): string {
  return join(tlsDir(home), 'issued-names.json');
}

function parse(file: string, text: string | undefined): { name: string; issued_at: string }[] {
  if (text === undefined) return [];
  try {
    return schema.parse(JSON.parse(text)).names;
  } catch (error) {
    // Fail closed: without the list no name can be shown to be free.
    throw new CmdopError('config', `${file} is damaged, so no new host can join until it is restored`, { cause: error, hint: 'Restore it from a backup of the CA host.' });
  }
}

export async function issuedNames(home: string): Promise<ReadonlySet<string>> {
  const file = issuedPath(home);
  return new Set(parse(file, await readSecureFile(file)).map((n) => n.name));
}

/** Records `name` as issued; CmdopError('denied') when it already was. */
export async function recordIssued(home: string, name: string): Promise<void> {
  const file = issuedPath(home);
  await updateStateFile(file, (current) => {
    const names = parse(file, current);
    if (names.some((n) => n.name === name)) {
      throw new CmdopError('denied', `the host name "${name}" was already issued in this workspace`, { hint: 'Pick another name with --name.' });
    }
    return `${JSON.stringify({ version: 1, names: [...names, { name, issued_at: new Date().toISOString() }] }, null, 2)}\n`;
  });
}
