/** The identity layer (DESIGN.md §2, §6): workspace CA, host certificates, join and local tokens. */
export * from './host-cert.js';
export * from './host-name.js';
export * from './join-token.js';
export * from './local-token.js';
export * from './workspace-ca.js';
