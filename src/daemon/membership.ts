/**
 * This host's membership of a workspace (`workspace.json`): the workspace, this host's name
 * in it, and the CA host to announce to. Identity itself is the certificate in `tls/`; this
 * file only says where to find the others.
 */
import { z } from 'zod';
import { updateStateFile } from '../config/file-lock.js';
import { readSecureFile } from '../config/secure-file.js';
import { CmdopError } from '../errors.js';
import { membershipPath } from './paths.js';

export interface Membership {
  readonly workspace_id: string;
  readonly workspace_name: string;
  readonly host_name: string;
  /** True on the host that holds the CA key. */
  readonly is_ca: boolean;
  /** The CA host's name and address; this host's own on the CA host. */
  readonly ca_host_name: string;
  readonly ca_address: string;
  readonly joined_at: string;
}

const schema = z
  .object({
    workspace_id: z.string().regex(/^[0-9a-f]{32}$/),
    workspace_name: z.string().min(1),
    host_name: z.string().min(1),
    is_ca: z.boolean(),
    ca_host_name: z.string().min(1),
    ca_address: z.string(),
    joined_at: z.string(),
  })
  .strict();

export async function loadMembership(home: string): Promise<Membership | undefined> {
  const file = membershipPath(home);
  const text = await readSecureFile(file);
  if (text === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new CmdopError('config', `${file} is not valid JSON`, { cause: error, hint: 'Restore it from a backup, or join the workspace again.' });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    throw new CmdopError('config', `${file} is not a cmdop membership file: ${parsed.error.issues[0]?.message ?? 'bad shape'}`, {
      hint: 'Restore it from a backup, or join the workspace again.',
    });
  }
  return parsed.data;
}

export async function saveMembership(home: string, membership: Membership): Promise<void> {
  await updateStateFile(membershipPath(home), () => `${JSON.stringify(membership, null, 2)}\n`);
}
