// `npm run build` (and `npm pack`, through prepack): the package's compiled form in dist/.
// TypeScript to JavaScript with declarations and source maps (tsconfig.build.json), the web
// demo built by Vite, and the files the code reads beside itself at run time, at the same
// places relative to the compiled modules: the worker bootstrap, the embedded data set and the
// built page.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const dist = path.join(root, 'dist');
const step = (what) => process.stderr.write(`build: ${what}\n`);

fs.rmSync(dist, { recursive: true, force: true });
step('tsc -p tsconfig.build.json');
execFileSync(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-p', path.join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
step('the web demo (vite)');
const { build } = await import('vite');
await build({ configFile: path.join(root, 'web-demo/vite.config.ts'), logLevel: 'warn' });
for (const [from, to] of [
  ['core/worker-boot.mjs', 'core/worker-boot.mjs'],
  ['datasets/fashion-mnist-small', 'datasets/fashion-mnist-small'],
  ['web-demo/dist', 'web-demo/dist'],
]) {
  step(`${from} → dist/${to}`);
  fs.cpSync(path.join(root, from), path.join(dist, to), { recursive: true });
}
