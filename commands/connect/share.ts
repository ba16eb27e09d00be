import { Args, Flags } from '@oclif/core';
import { BaseCommand } from '../../src/cli/base-command.js';
import { parseDuration } from '../../src/cli/duration.js';
import { requireUnlocked } from '../../src/identity/machine-password.js';
import { resolveCmdopHome } from '../../src/config/cmdop-home.js';
import { loadMembership } from '../../src/daemon/membership.js';
import { RESERVED_NAMES, reachableAddress } from '../../src/daemon/workspace.js';
import { CmdopError } from '../../src/errors.js';
import { mintShare, shareTtlHours, type MintedShare } from '../../src/identity/share-link.js';
import { caFingerprint, loadCaCert, tlsDir } from '../../src/identity/workspace-ca.js';

export default class ConnectShare extends BaseCommand {
  static override summary = 'Mint a share link: a guest outside the workspace may call this host, through its gate, until it expires.';
  static override description = [
    "HOST is this host's name: a host's guests are let in by that host's own operator, so run the command on the host to share. The link is printed once; only a hash of it is kept, in CMDOP_HOME/shares.json (0600). It carries this host's name and address (the running daemon's, else agent.listen, unless --address is given) and the workspace CA fingerprint, and works on this host only, as the principal guest:ID, gated like any remote caller. Treat it like a password.",
    'Exit codes: 0 minted; 2 a bad --ttl or --address, or HOST is not this host; 3 the machine is locked (cmdop password unlock); 6 this host is in no workspace yet; 7 the address is unknown (agent.listen on port 0 and no daemon running): start it or give --address.',
  ].join('\n\n');
  static override examples = [
    '<%= config.bin %> connect share build-box',
    '<%= config.bin %> connect share build-box --ttl 2h --json',
    '<%= config.bin %> connect share build-box --ttl 7d --address build-box.example.net:8470',
  ];
  static override args = { host: Args.string({ ignoreStdin: true, description: "This host's name in the workspace.", required: true }) };
  static override flags = {
    ttl: Flags.string({ description: 'How long the link works (90m, 24h, 7d), rounded up to whole hours; at most 720h (30d).', default: '24h' }),
    address: Flags.string({ description: "HOST:PORT guests reach this host at; default where the running daemon listens, else agent.listen." }),
  };

  async run(): Promise<MintedShare> {
    const { args, flags } = await this.parse(ConnectShare);
    const ttlHours = shareTtlHours(parseDuration(flags.ttl, '--ttl'));
    const home = resolveCmdopHome();
    const membership = await loadMembership(home);
    const caCertPem = await loadCaCert(tlsDir(home));
    if (membership === undefined || caCertPem === undefined) {
      throw new CmdopError('config', 'this host is in no workspace yet, so it cannot share itself', {
        hint: 'Run `cmdop agent start` (it makes a workspace when there is none) or join one with `cmdop join TOKEN`, then mint the link.',
      });
    }
    const self = membership.host_name;
    const host = args.host.toLowerCase();
    if (host !== self && !RESERVED_NAMES.has(host)) {
      throw new CmdopError('invalid_input', `${JSON.stringify(args.host.slice(0, 80))} is not this host (this is ${self}): a host's share links are minted on that host`, {
        hint: `Run \`cmdop connect share ${args.host.slice(0, 80)}\` on that host, or \`cmdop connect share ${self}\` to share this one.`,
        details: { host: args.host.slice(0, 80), self },
      });
    }
    await requireUnlocked(home);
    const address = flags.address ?? (await reachableAddress(home));
    if (address === undefined) {
      throw new CmdopError('unavailable', 'cannot tell the address guests reach this host at: agent.listen says port 0 and the daemon is not running', {
        hint: 'Start the daemon with `cmdop agent start`, or give the address with --address HOST:PORT.',
      });
    }
    const minted = await mintShare(home, { hostName: self, address, caFingerprint: caFingerprint(caCertPem), ttlHours });
    if (!this.jsonEnabled()) {
      this.log(minted.token);
      process.stderr.write(
        [
          `share link ${minted.id} for ${minted.host} at ${minted.address}, valid until ${minted.expires_at}; the guest calls as ${minted.principal}, through this host's gate.`,
          'Treat it like a password: whoever holds it can call this host until it expires. It is shown only this once.',
          `Revoke it with \`cmdop connect share revoke ${minted.id}\`.`,
        ].join('\n') + '\n',
      );
    }
    return minted;
  }
}
