/** sslkit's version, read from package.json: the one place it is written. */
import { createRequire } from 'node:module';

// The package's own name resolves to itself (its `exports` lists package.json), from the sources and from dist/.
export const SSLKIT_VERSION: string = (createRequire(import.meta.url)('sslkit/package.json') as { version: string }).version;
