/**
 * Builds the web demo with Vite when web-demo/dist is missing or older than its sources, so
 * `sslkit serve` and the quick start always serve the page that matches the code.
 */
import fs from 'node:fs';
import path from 'node:path';

export const DEMO_ROOT = import.meta.dirname;
export const DEMO_DIST = path.join(DEMO_ROOT, 'dist');

function newest(dir: string): number {
  let t = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

export function demoIsStale(): boolean {
  const built = path.join(DEMO_DIST, 'index.html');
  if (!fs.existsSync(built)) return true;
  // An installed package ships the built page and no sources to rebuild it from.
  if (!fs.existsSync(path.join(DEMO_ROOT, 'src'))) return false;
  const sources = Math.max(
    newest(path.join(DEMO_ROOT, 'src')),
    newest(path.join(DEMO_ROOT, 'public')),
    fs.statSync(path.join(DEMO_ROOT, 'index.html')).mtimeMs,
    fs.statSync(path.join(DEMO_ROOT, 'vite.config.ts')).mtimeMs,
  );
  return fs.statSync(built).mtimeMs < sources;
}

/** Returns the folder of the built page, building it first when needed. */
export async function ensureDemoBuilt(log: (l: string) => void = () => {}): Promise<string> {
  if (!demoIsStale()) return DEMO_DIST;
  log('building the web demo (vite)');
  const { build } = await import('vite');
  await build({ configFile: path.join(DEMO_ROOT, 'vite.config.ts'), logLevel: 'warn' });
  return DEMO_DIST;
}
