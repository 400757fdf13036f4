/** Vector maths on row-major Float32Array matrices, shared by evaluation, indexing and serving. */

/** L2-normalises each row of an [n, d] matrix in place (zero rows stay zero). */
export function normalizeRows(x: Float32Array, d: number): Float32Array {
  for (let off = 0; off < x.length; off += d) {
    let s = 0;
    for (let j = 0; j < d; j++) s += x[off + j] * x[off + j];
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < d; j++) x[off + j] *= inv;
  }
  return x;
}

/** The mean row of an [n, d] matrix. */
export function meanRow(x: Float32Array, d: number): Float32Array {
  const mean = new Float64Array(d);
  const n = x.length / d;
  for (let off = 0; off < x.length; off += d) for (let j = 0; j < d; j++) mean[j] += x[off + j];
  return Float32Array.from(mean, (v) => v / Math.max(1, n));
}

/**
 * Rows minus `centre`, L2-normalised again, in place. Embeddings of one model share a dominant
 * direction (cosines of 0.99 between unrelated images); centring on a reference set's mean
 * removes it, so cosines spread over [−1, 1] and small numeric differences no longer reorder
 * neighbours.
 */
export function centreRows(x: Float32Array, d: number, centre: ArrayLike<number>): Float32Array {
  for (let off = 0; off < x.length; off += d) for (let j = 0; j < d; j++) x[off + j] -= centre[j];
  return normalizeRows(x, d);
}

/**
 * An embedding in a centred index's space (sslkit index --centre): its unit vector minus
 * `centre`, normalised again. What the service and the page do to each image they embed.
 */
export function centredUnit(v: ArrayLike<number>, centre: ArrayLike<number>): Float32Array {
  return centreRows(normalizeRows(Float32Array.from(v), v.length), v.length, centre);
}

/**
 * The k largest of `scores` (length n) as [index, score] pairs, best first, with a binary
 * min-heap of size k: O(n log k).
 */
export function topK(scores: Float32Array, k: number): { index: Int32Array; score: Float32Array } {
  k = Math.min(k, scores.length);
  const hi = new Int32Array(k);
  const hs = new Float32Array(k);
  let size = 0;
  const siftDown = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < size && hs[l] < hs[m]) m = l;
      if (r < size && hs[r] < hs[m]) m = r;
      if (m === i) return;
      [hs[i], hs[m]] = [hs[m], hs[i]];
      [hi[i], hi[m]] = [hi[m], hi[i]];
      i = m;
    }
  };
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (size < k) {
      let j = size++;
      hs[j] = s;
      hi[j] = i;
      while (j > 0) {
        const p = (j - 1) >> 1;
        if (hs[p] <= hs[j]) break;
        [hs[p], hs[j]] = [hs[j], hs[p]];
        [hi[p], hi[j]] = [hi[j], hi[p]];
        j = p;
      }
    } else if (s > hs[0]) {
      hs[0] = s;
      hi[0] = i;
      siftDown(0);
    }
  }
  // Pop in ascending order, fill from the back.
  const index = new Int32Array(size);
  const score = new Float32Array(size);
  for (let n = size - 1; n >= 0; n--) {
    index[n] = hi[0];
    score[n] = hs[0];
    size--;
    hs[0] = hs[size];
    hi[0] = hi[size];
    siftDown(0);
  }
  return { index, score };
}

/**
 * scores[j] = ⟨q, rows[j]⟩ for every row of an [m, d] matrix. Four rows per pass over q: the
 * loop is memory-bound, and sharing q's loads made it ~25% faster at 100k × 128.
 */
export function dotAll(q: Float32Array, qOff: number, rows: Float32Array, d: number, out: Float32Array): Float32Array {
  const m = rows.length / d;
  let j = 0;
  for (; j + 4 <= m; j += 4) {
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    const o0 = j * d;
    const o1 = o0 + d;
    const o2 = o1 + d;
    const o3 = o2 + d;
    for (let t = 0; t < d; t++) {
      const v = q[qOff + t];
      s0 += v * rows[o0 + t];
      s1 += v * rows[o1 + t];
      s2 += v * rows[o2 + t];
      s3 += v * rows[o3 + t];
    }
    out[j] = s0;
    out[j + 1] = s1;
    out[j + 2] = s2;
    out[j + 3] = s3;
  }
  for (; j < m; j++) {
    let s = 0;
    for (let t = 0; t < d; t++) s += q[qOff + t] * rows[j * d + t];
    out[j] = s;
  }
  return out;
}

/**
 * Weighted kNN classification on L2-normalised embeddings (the instance-discrimination protocol):
 * each of the k nearest memory items votes for its label with weight exp(cos/T).
 * Returns the top-1 accuracy over the queries.
 */
export function knnAccuracy(
  memory: Float32Array,
  memLabels: Int32Array,
  queries: Float32Array,
  qLabels: Int32Array,
  d: number,
  o: {
    k: number;
    temperature: number;
    classes: number;
    /** Leave-one-out: per query, the memory row holding the same image (-1: none), never its own neighbour. */
    exclude?: Int32Array;
  },
): number {
  const m = memory.length / d;
  const q = queries.length / d;
  const scores = new Float32Array(m);
  const votes = new Float64Array(o.classes);
  let correct = 0;
  for (let i = 0; i < q; i++) {
    dotAll(queries, i * d, memory, d, scores);
    if (o.exclude && o.exclude[i] >= 0) scores[o.exclude[i]] = -Infinity;
    const nn = topK(scores, o.k);
    votes.fill(0);
    for (let j = 0; j < nn.index.length; j++) votes[memLabels[nn.index[j]]] += Math.exp(nn.score[j] / o.temperature);
    let best = 0;
    for (let c = 1; c < o.classes; c++) if (votes[c] > votes[best]) best = c;
    if (best === qLabels[i]) correct++;
  }
  return correct / q;
}

/** Mean over dimensions of the per-dimension std of L2-normalised rows (≈1/√d healthy, → 0 collapsed). */
export function collapseStd(x: Float32Array, d: number): number {
  const n = x.length / d;
  const z = normalizeRows(Float32Array.from(x), d);
  let total = 0;
  for (let j = 0; j < d; j++) {
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = z[i * d + j];
      s += v;
      s2 += v * v;
    }
    const mean = s / n;
    total += Math.sqrt(Math.max(s2 / n - mean * mean, 0));
  }
  return total / d;
}

/**
 * For leave-one-out kNN: per query image, the memory row of the same image (matched by source),
 * or -1. Null when the two sets share no image.
 */
export function sameImageRows(memorySources: string[] | undefined, querySources: string[] | undefined): Int32Array | null {
  if (!memorySources || !querySources) return null;
  const row = new Map(memorySources.map((s, i) => [s, i]));
  const ex = Int32Array.from(querySources, (s) => row.get(s) ?? -1);
  return ex.some((v) => v >= 0) ? ex : null;
}
