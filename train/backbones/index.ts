/** The backbone registry: `--backbone convnet | resnet10 | resnet18 | tv-resnet18/34/50 | vit`, and `onnx:FILE` for an imported encoder (`--init`). */
import { convnet } from './convnet.js';
import { resnet } from './resnet.js';
import { vit } from './vit.js';
import { importedBackbone } from './onnx-import.js';
import { tvResnet } from './tv-resnet.js';
import type { Backbone, BackboneOptions } from './types.js';
import { UserError } from '../../core/errors.js';

export const BACKBONES: Record<string, (o: BackboneOptions) => Backbone> = {
  convnet: (o) => convnet(o),
  resnet10: (o) => resnet({ ...o, depth: 10 }),
  resnet18: (o) => resnet({ ...o, depth: 18 }),
  'tv-resnet18': (o) => tvResnet({ ...o, depth: 18 }),
  'tv-resnet34': (o) => tvResnet({ ...o, depth: 34 }),
  'tv-resnet50': (o) => tvResnet({ ...o, depth: 50 }),
  vit: (o) => vit(o),
};

/** The backbone name of a run that starts from an ONNX encoder, and of one that inserts BatchNorm after its folded convolutions. */
export const IMPORTED_PREFIX = 'onnx:';
export const IMPORTED_BN_PREFIX = 'onnx+bn:';
export const isImported = (name: string) => name.startsWith(IMPORTED_PREFIX) || name.startsWith(IMPORTED_BN_PREFIX);

export function makeBackbone(name: string, o: BackboneOptions = {}): Backbone {
  if (name.startsWith(IMPORTED_PREFIX)) return importedBackbone(name.slice(IMPORTED_PREFIX.length));
  if (name.startsWith(IMPORTED_BN_PREFIX)) return importedBackbone(name.slice(IMPORTED_BN_PREFIX.length), { insertBatchNorm: true });
  const f = BACKBONES[name];
  if (!f) throw new UserError(`unknown backbone '${name}' (expected one of: ${Object.keys(BACKBONES).join(', ')})`);
  return f(o);
}
export type { Backbone, BackboneOptions, BackboneOutput } from './types.js';
