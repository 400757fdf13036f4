/** The gallery manifest, preprocessing and its formula, shared with Node (core/gallery-format.ts). */
export type { GalleryManifest, Preprocessing } from '../../core/gallery-format';
export { interleavedToInput } from '../../core/gallery-format';

export type Progress = (loaded: number, total: number) => void;
