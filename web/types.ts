/** The gallery manifest, preprocessing and its formula, shared with Node (core/gallery-format.ts). */
export type { GalleryManifest, Preprocessing } from '../core/gallery-format.js';
export { backgroundOf, DEFAULT_BACKGROUND, interleavedToInput } from '../core/gallery-format.js';
/** The service's vector maths, so that the browser ranks exactly as it does (core/vectors.ts). */
export { centredUnit, normalizeRows } from '../core/vectors.js';

export type Progress = (loaded: number, total: number) => void;
