/** The SDK: a typed client of this host's cmdop daemon, over its local socket (DESIGN.md §2). */
export * from './local-client.js';
