/**
 * Interpolation matrices that reproduce ONNX Resize along one axis (y = A·x). Resize's gradient is
 * Aᵀ·dy; the gradient tests check these matrices against onnxruntime's own Resize output.
 */
export interface ResizeOptions {
  mode: 'nearest' | 'linear';
  coordinateTransformationMode: 'half_pixel' | 'asymmetric' | 'align_corners' | 'pytorch_half_pixel';
  nearestMode?: 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil';
}

function sourceCoordinate(o: number, inSize: number, outSize: number, ctm: ResizeOptions['coordinateTransformationMode']): number {
  const scale = outSize / inSize;
  switch (ctm) {
    case 'half_pixel':
      return (o + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel':
      return outSize > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case 'asymmetric':
      return o / scale;
    case 'align_corners':
      return outSize === 1 ? 0 : (o * (inSize - 1)) / (outSize - 1);
  }
}

function roundNearest(v: number, mode: NonNullable<ResizeOptions['nearestMode']>): number {
  switch (mode) {
    case 'floor':
      return Math.floor(v);
    case 'ceil':
      return Math.ceil(v);
    case 'round_prefer_ceil':
      return Math.round(v);
    case 'round_prefer_floor':
      return v - Math.floor(v) === 0.5 ? Math.floor(v) : Math.round(v);
  }
}

/** Row-major [outSize, inSize] matrix A such that resizing one axis is y = A·x. */
export function resizeMatrix(inSize: number, outSize: number, o: ResizeOptions): Float32Array {
  const A = new Float32Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const src = sourceCoordinate(i, inSize, outSize, o.coordinateTransformationMode);
    if (o.mode === 'nearest') {
      const j = Math.min(Math.max(roundNearest(src, o.nearestMode ?? 'round_prefer_floor'), 0), inSize - 1);
      A[i * inSize + j] = 1;
    } else {
      const c = Math.min(Math.max(src, 0), inSize - 1);
      const lo = Math.floor(c);
      const hi = Math.min(lo + 1, inSize - 1);
      const w = c - lo;
      A[i * inSize + lo] += 1 - w;
      A[i * inSize + hi] += w;
    }
  }
  return A;
}
