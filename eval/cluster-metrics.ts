/**
 * Clustering scores against labels: normalised mutual information (arithmetic-mean normalisation,
 * scikit-learn's default) and accuracy under the best one-to-one matching of clusters to classes
 * (the Hungarian algorithm on the contingency table).
 */

export function contingency(pred: ArrayLike<number>, truth: ArrayLike<number>, k: number, classes: number): number[][] {
  const t = Array.from({ length: k }, () => new Array<number>(classes).fill(0));
  for (let i = 0; i < pred.length; i++) t[pred[i]][truth[i]]++;
  return t;
}

export function nmi(pred: ArrayLike<number>, truth: ArrayLike<number>, k: number, classes: number): number {
  const n = pred.length;
  const t = contingency(pred, truth, k, classes);
  const a = t.map((r) => r.reduce((s, v) => s + v, 0));
  const b = Array.from({ length: classes }, (_, j) => t.reduce((s, r) => s + r[j], 0));
  const h = (xs: number[]) => -xs.reduce((s, v) => (v > 0 ? s + (v / n) * Math.log(v / n) : s), 0);
  let mi = 0;
  for (let i = 0; i < k; i++)
    for (let j = 0; j < classes; j++) if (t[i][j] > 0) mi += (t[i][j] / n) * Math.log((n * t[i][j]) / (a[i] * b[j]));
  const denom = (h(a) + h(b)) / 2;
  return denom > 0 ? mi / denom : 1;
}

/**
 * Minimum-cost assignment of rows to columns of a square cost matrix (Hungarian algorithm with
 * potentials, O(n³)); returns the column of each row.
 */
export function hungarian(cost: number[][]): number[] {
  const n = cost.length;
  const u = new Array<number>(n + 1).fill(0);
  const v = new Array<number>(n + 1).fill(0);
  const p = new Array<number>(n + 1).fill(0); // p[j]: row matched to column j (1-based, 0 = none)
  const way = new Array<number>(n + 1).fill(0);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Array<number>(n + 1).fill(Infinity);
    const used = new Array<boolean>(n + 1).fill(false);
    do {
      used[j0] = true;
      const i0 = p[j0];
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost[i0 - 1][j - 1] - u[i0] - v[j];
        if (cur < minv[j]) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j] < delta) {
          delta = minv[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]] += delta;
          v[j] -= delta;
        } else minv[j] -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0];
      p[j0] = p[j1];
      j0 = j1;
    } while (j0);
  }
  const rowToCol = new Array<number>(n).fill(-1);
  for (let j = 1; j <= n; j++) if (p[j]) rowToCol[p[j] - 1] = j - 1;
  return rowToCol;
}

/** Accuracy when each cluster is mapped to one class (one-to-one, maximising matches). */
export function hungarianAccuracy(pred: ArrayLike<number>, truth: ArrayLike<number>, k: number, classes: number): number {
  const size = Math.max(k, classes);
  const t = contingency(pred, truth, k, classes);
  const cost = Array.from({ length: size }, (_, i) => Array.from({ length: size }, (_, j) => -(t[i]?.[j] ?? 0)));
  const match = hungarian(cost);
  let correct = 0;
  for (let i = 0; i < k; i++) correct += t[i][match[i]] ?? 0;
  return correct / pred.length;
}
