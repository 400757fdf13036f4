#!/usr/bin/env node
// The sslkit command. From a checkout it runs the TypeScript sources through tsx's loader (no build
// step); an installed package has no sources and runs its compiled JavaScript (dist/, `npm run build`).
import fs from 'node:fs';

const sources = new URL('../cli/main.ts', import.meta.url);
let main;
if (fs.existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
} else ({ main } = await import(new URL('../dist/cli/main.js', import.meta.url).href));
await main(process.argv);
