/**
 * The demo as a self-contained static site: the built page, the model at demo/model.onnx and the
 * gallery at demo/gallery/, the same layout `sslkit serve` uses, so any static host can serve it.
 * (Without COOP/COEP headers from the host the page runs single-threaded, and says so.)
 */
import fs from 'node:fs';
import path from 'node:path';
import { UserError } from '../core/errors.js';
import { ensureDemoBuilt } from './build.js';

export async function writeDemoSite(out: string, model: string, gallery: string, log?: (l: string) => void): Promise<void> {
  if (!fs.existsSync(model)) throw new UserError(`${model}: no such model file`);
  if (!fs.existsSync(path.join(gallery, 'manifest.json')))
    throw new UserError(`${gallery}: no gallery here (manifest.json missing); write one with 'sslkit index MODEL --gallery DIR'`);
  const dist = await ensureDemoBuilt(log);
  fs.mkdirSync(out, { recursive: true });
  fs.cpSync(dist, out, { recursive: true });
  fs.mkdirSync(path.join(out, 'demo'), { recursive: true });
  fs.copyFileSync(model, path.join(out, 'demo', 'model.onnx'));
  fs.rmSync(path.join(out, 'demo', 'gallery'), { recursive: true, force: true });
  fs.cpSync(gallery, path.join(out, 'demo', 'gallery'), { recursive: true });
}
