/** The backbone registry: `--backbone convnet | resnet10 | resnet18 | vit`. */
import { convnet } from './convnet.js';
import { resnet } from './resnet.js';
import { vit } from './vit.js';
import type { Backbone, BackboneOptions } from './types.js';
import { UserError } from '../../core/errors.js';

export const BACKBONES: Record<string, (o: BackboneOptions) => Backbone> = {
  convnet: (o) => convnet(o),
  resnet10: (o) => resnet({ ...o, depth: 10 }),
  resnet18: (o) => resnet({ ...o, depth: 18 }),
  vit: (o) => vit(o),
};

export function makeBackbone(name: string, o: BackboneOptions = {}): Backbone {
  const f = BACKBONES[name];
  if (!f) throw new UserError(`unknown backbone '${name}' (expected one of: ${Object.keys(BACKBONES).join(', ')})`);
  return f(o);
}
export type { Backbone, BackboneOptions, BackboneOutput } from './types.js';
