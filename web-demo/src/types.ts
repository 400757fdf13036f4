/** The gallery manifest and preprocessing types, shared with Node (core/gallery-format.ts). */
export type { GalleryManifest, Preprocessing } from '../../core/gallery-format';

export type Progress = (loaded: number, total: number) => void;
