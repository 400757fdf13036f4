/** The method registry: `sslkit train --method NAME`. One file per method (METHODS.md). */
import { simclr } from './simclr.js';
import { moco } from './moco.js';
import { triplet } from './triplet.js';
import { nce } from './nce.js';
import { negsample } from './negsample.js';
import { dae } from './dae.js';
import { context } from './context-encoder.js';
import { distill } from './distill.js';
import { bownet } from './bownet.js';
import { byol } from './byol.js';
import { simsiam } from './simsiam.js';
import { obow } from './obow.js';
import { dino } from './dino.js';
import { barlow } from './barlow.js';
import { vicreg } from './vicreg.js';
import { wmse } from './wmse.js';
import { deepcluster } from './deepcluster.js';
import { swav } from './swav.js';
import type { Method } from './types.js';
import { UserError } from '../../core/errors.js';

/** In METHODS.md's order: contrastive, reconstruction, static teacher, dynamic teacher, redundancy reduction, clustering. */
export const METHODS: Record<string, Method> = {
  simclr,
  moco,
  triplet,
  nce,
  negsample,
  dae,
  context,
  distill,
  bownet,
  byol,
  simsiam,
  dino,
  obow,
  barlow,
  vicreg,
  wmse,
  deepcluster,
  swav,
};

export function getMethod(name: string): Method {
  const m = METHODS[name];
  if (!m) throw new UserError(`unknown method '${name}' (available: ${Object.keys(METHODS).join(', ')})`);
  return m;
}

/** Resolves `key=value` overrides against a method's parameters, rejecting unknown keys. */
export function resolveHyperParams(m: Method, overrides: Record<string, number>): Record<string, number> {
  const hp: Record<string, number> = {};
  for (const [k, p] of Object.entries(m.params)) hp[k] = p.default;
  for (const [k, v] of Object.entries(overrides)) {
    if (!(k in m.params)) throw new UserError(`method '${m.name}' has no parameter '${k}' (it has: ${Object.keys(m.params).join(', ')})`);
    if (!Number.isFinite(v)) throw new UserError(`parameter '${k}' must be a number, got '${v}'`);
    hp[k] = v;
  }
  return hp;
}
export type { Method } from './types.js';
