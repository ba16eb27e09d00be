/**
 * The daemon keeps this machine's OAuth access token fresh (issue 4 §2): it looks every few
 * seconds (a stat of oauth.json, cached) and refreshes once the token has less than
 * {@link REFRESH_LEAD_MS} left, so a CLI call through the local socket gets a fresh token
 * without prompting. A failed refresh is logged and tried again at the next look; a refresh
 * token the provider refuses is logged once and not offered again, until a new `cmdop login`.
 */
import { CmdopError } from '../errors.js';
import { freshAccessToken, oauthStatus, REFRESH_LEAD_MS } from '../client/oauth-session.js';
import type { AgentLog } from './agent-log.js';

/** How often the daemon looks at the session. */
const LOOK_EVERY_MS = 5_000;

export interface OauthRefresher {
  stop(): void;
}

export function startOauthRefresher(options: { home: string; log: AgentLog; leadMs?: number; everyMs?: number }): OauthRefresher {
  const { home, log } = options;
  const leadMs = options.leadMs ?? REFRESH_LEAD_MS;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let lastFailure = '';
  /** The login (its logged_in_at) whose refresh token the provider refused; asking again would only be refused again. */
  let refusedLogin: string | null = null;

  const look = async (): Promise<void> => {
    const status = await oauthStatus(home);
    if (!status.logged_in || status.access_expires_at === null || status.logged_in_at === refusedLogin) return;
    if (Date.parse(status.access_expires_at) - Date.now() > leadMs) return;
    let refreshed: Awaited<ReturnType<typeof freshAccessToken>>;
    try {
      refreshed = await freshAccessToken(home, { minValidityMs: leadMs });
    } catch (error) {
      // invalid_grant: this sign-in is over. A new `cmdop login` has a new logged_in_at.
      if (error instanceof CmdopError && error.code === 'denied') refusedLogin = status.logged_in_at;
      throw error;
    }
    lastFailure = '';
    log.info('refreshed the OAuth access token', { subject: refreshed.subject, expires_at: refreshed.expiresAt.toISOString() });
  };

  const tick = (): void => {
    if (stopped) return;
    void look()
      .catch((error: unknown) => {
        const message = CmdopError.from(error).message;
        // The same failure every few seconds would drown the log.
        if (message !== lastFailure) log.warn('could not refresh the OAuth access token', { error: message });
        lastFailure = message;
      })
      .finally(() => {
        if (!stopped) timer = setTimeout(tick, options.everyMs ?? LOOK_EVERY_MS);
      });
  };
  tick();
  return {
    stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
    },
  };
}
