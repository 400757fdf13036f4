/** What the page shares with the browser library (web/types.ts). */
export * from '../../web/types.js';
