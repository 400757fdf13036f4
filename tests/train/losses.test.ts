/**
 * Every method's loss on a tiny fixed input against a straightforward computation written here in
 * plain JavaScript (float64 arrays, no code shared with the implementation), to 1e-5; the state
 * updates (queue, centre, memory bank, Sinkhorn codes) the same way; and the gradients of the new
 * losses against finite differences.
 */
import { describe, expect, it } from 'vitest';
import { Graph, type Tensor } from '../../train/engine/graph.js';
import { Program } from '../../train/engine/program.js';
import * as o from '../../train/engine/ops.js';
import { Rng } from '../../core/random.js';
import { ntXent } from '../../train/losses/nt-xent.js';
import { byolLoss, simsiamLoss } from '../../train/losses/cosine.js';
import { barlowTwinsLoss } from '../../train/losses/barlow-twins.js';
import { vicregLoss } from '../../train/losses/vicreg.js';
import { whiten, wmseLoss } from '../../train/losses/whitening.js';
import { queueInfoNce } from '../../train/losses/info-nce.js';
import { tripletLoss } from '../../train/losses/triplet.js';
import { dinoLoss, nextCenter } from '../../train/losses/dino.js';
import { queuedCodes, sinkhorn, swappedPrediction } from '../../train/losses/swav.js';

/** SwAV's loss without a queue: Sinkhorn codes of the global views, predicted from every other view. */
const swappedPredictionLoss = (scores: Tensor[], globals: number, temperature: number, epsilon: number, iterations: number) =>
  swappedPrediction(
    scores.slice(0, globals).map((s) => sinkhorn(s, epsilon, iterations)),
    scores,
    temperature,
  );
import { nceLoss, negativeSamplingLoss } from '../../train/losses/memory-bank.js';
import { mse, maskedMse } from '../../train/losses/reconstruction.js';
import { distillationLoss } from '../../train/losses/distillation.js';
import { enqueue, scatterRows } from '../../train/methods/state.js';
import { softCrossEntropy } from '../../train/losses/common.js';
import { checkGradient } from './engine/grad-check.js';
import { bowTarget } from '../../train/methods/obow.js';
import { bowProgram } from '../../train/methods/bownet.js';
import { swav } from '../../train/methods/swav.js';
import type { RuntimeEnv, StepInfo } from '../../train/methods/types.js';

type M = number[][];
const rng = new Rng(7);
const randn = (r: number, c: number, scale = 1): M =>
  Array.from({ length: r }, () => Array.from({ length: c }, () => scale * rng.normal()));
const flat = (m: M) => Float32Array.from(m.flat());
// The implementation runs in float32: round the reference's inputs the same way.
const f32 = (m: M): M => m.map((r) => r.map((v) => Math.fround(v)));

/** Runs `build` on float32 inputs of the given matrices; returns the outputs as plain arrays. */
async function run(inputs: Record<string, M | number[]>, build: (x: Record<string, Tensor>) => Tensor | Tensor[]): Promise<Float32Array[]> {
  const g = new Graph('train');
  const x: Record<string, Tensor> = {};
  const feeds: Record<string, Float32Array> = {};
  for (const [name, v] of Object.entries(inputs)) {
    const m = Array.isArray(v[0]) ? (v as M) : [v as number[]];
    const shape = Array.isArray(v[0]) ? [m.length, m[0].length] : [(v as number[]).length];
    x[name] = g.input(name, shape);
    feeds[name] = flat(m);
  }
  const outs = [build(x)].flat();
  outs.forEach((t, i) => g.output(t, `out${i}`));
  const p = await Program.compile(g, { device: 'cpu' });
  const r = await p.run(feeds);
  await p.release();
  return outs.map((_, i) => r[`out${i}`] as Float32Array);
}
const scalar = async (inputs: Record<string, M | number[]>, build: (x: Record<string, Tensor>) => Tensor) =>
  (await run(inputs, build))[0][0];

// ---------------------------------------------------------------- plain-JS reference maths
const dot = (a: number[], b: number[]) => a.reduce((s, v, i) => s + v * b[i], 0);
const norm = (a: number[]) => Math.sqrt(dot(a, a));
const unit = (a: number[]) => a.map((v) => v / norm(a));
const cos = (a: number[], b: number[]) => dot(a, b) / (norm(a) * norm(b));
const mean = (a: number[]) => a.reduce((s, v) => s + v, 0) / a.length;
const col = (m: M, j: number) => m.map((r) => r[j]);
const logSumExp = (a: number[]) => {
  const mx = Math.max(...a);
  return mx + Math.log(a.reduce((s, v) => s + Math.exp(v - mx), 0));
};
const softmax = (a: number[]) => {
  const l = logSumExp(a);
  return a.map((v) => Math.exp(v - l));
};
const softplus = (x: number) => Math.log1p(Math.exp(x));
const transpose = (a: M) => a[0].map((_, j) => col(a, j));
/** Mean of term(i, v) over the pairs (global view i of 2, any other view v of 3). */
const overPairs = (term: (i: number, v: number) => number) => {
  const terms: number[] = [];
  for (let i = 0; i < 2; i++) for (let v = 0; v < 3; v++) if (v !== i) terms.push(term(i, v));
  return mean(terms);
};

describe('method losses equal a direct computation (1e-5)', () => {
  const B = 6;
  const d = 5;
  const z1 = f32(randn(B, d));
  const z2 = f32(randn(B, d));

  it('simclr: NT-Xent', async () => {
    const tau = 0.5;
    const z = [...z1, ...z2].map(unit);
    let total = 0;
    for (let i = 0; i < 2 * B; i++) {
      const j = (i + B) % (2 * B);
      const others = z.map((zk, k) => (k === i ? -Infinity : dot(z[i], zk) / tau));
      total += -(dot(z[i], z[j]) / tau - logSumExp(others.filter((v) => v !== -Infinity)));
    }
    expect(await scalar({ z: [...z1, ...z2] }, ({ z }) => ntXent(z, tau))).toBeCloseTo(total / (2 * B), 5);
  });

  it('byol: 2 − 2 cos; simsiam: −cos', async () => {
    const want = mean(z1.map((p, i) => 2 - 2 * cos(p, z2[i])));
    expect(await scalar({ p: z1, z: z2 }, ({ p, z }) => byolLoss(p, z))).toBeCloseTo(want, 5);
    expect(await scalar({ p: z1, z: z2 }, ({ p, z }) => simsiamLoss(p, z))).toBeCloseTo(-mean(z1.map((p, i) => cos(p, z2[i]))), 5);
  });

  it('barlow: Σ(1 − C_ii)² + λ Σ_{i≠j} C_ij²', async () => {
    const std = (z: M) => {
      const out = z.map((r) => r.slice());
      for (let j = 0; j < d; j++) {
        const c = col(z, j);
        const m = mean(c);
        const v = mean(c.map((x) => (x - m) ** 2));
        for (let i = 0; i < B; i++) out[i][j] = (z[i][j] - m) / Math.sqrt(v + 1e-5);
      }
      return out;
    };
    const a = std(z1);
    const b = std(z2);
    let loss = 0;
    for (let i = 0; i < d; i++)
      for (let j = 0; j < d; j++) {
        const c = dot(col(a, i), col(b, j)) / B;
        loss += i === j ? (1 - c) ** 2 : 0.01 * c * c;
      }
    expect(await scalar({ a: z1, b: z2 }, ({ a, b }) => barlowTwinsLoss(a, b, 0.01))).toBeCloseTo(loss, 4);
  });

  it('vicreg: invariance, variance and covariance terms', async () => {
    const w = { lambda: 25, mu: 25, nu: 1, gamma: 1, eps: 1e-4 };
    const terms = (z: M) => {
      const means = Array.from({ length: d }, (_, j) => mean(col(z, j)));
      const cov = (i: number, j: number) => z.reduce((s, r) => s + (r[i] - means[i]) * (r[j] - means[j]), 0) / (B - 1);
      const variance = mean(Array.from({ length: d }, (_, j) => Math.max(0, w.gamma - Math.sqrt(cov(j, j) + w.eps))));
      let off = 0;
      for (let i = 0; i < d; i++) for (let j = 0; j < d; j++) if (i !== j) off += cov(i, j) ** 2;
      return { variance, covariance: off / d };
    };
    const inv = mean(z1.flatMap((r, i) => r.map((v, j) => (v - z2[i][j]) ** 2)));
    const t1 = terms(z1);
    const t2 = terms(z2);
    const want = w.lambda * inv + w.mu * (t1.variance + t2.variance) + w.nu * (t1.covariance + t2.covariance);
    expect(await scalar({ a: z1, b: z2 }, ({ a, b }) => vicregLoss(a, b, w))).toBeCloseTo(want, 4);
  });

  it('wmse joint: equals whitening both views together by the Cholesky factor (any whitening gives the same cosines)', async () => {
    const n = 16;
    const k = 4;
    const a = f32(randn(n, k));
    const b = f32(a.map((r) => r.map((v) => v + 0.5 * rng.normal())));
    // Joint sub-batch of both views, centred; Σ = L Lᵀ; whitened rows are L⁻¹ x.
    const x = [...a, ...b];
    const mu = Array.from({ length: k }, (_, j) => mean(col(x, j)));
    const xc = x.map((r) => r.map((v, j) => v - mu[j]));
    const S = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => dot(col(xc, i), col(xc, j)) / (2 * n - 1)));
    const L: M = Array.from({ length: k }, () => new Array(k).fill(0));
    for (let i = 0; i < k; i++)
      for (let j = 0; j <= i; j++) {
        let s = S[i][j];
        for (let p = 0; p < j; p++) s -= L[i][p] * L[j][p];
        L[i][j] = i === j ? Math.sqrt(s) : s / L[j][j];
      }
    const solve = (v: number[]) => {
      const y = new Array(k).fill(0);
      for (let i = 0; i < k; i++) y[i] = (v[i] - dot(L[i].slice(0, i), y.slice(0, i))) / L[i][i];
      return y;
    };
    const w = xc.map(solve);
    const want = mean(Array.from({ length: n }, (_, i) => 2 - 2 * cos(w[i], w[n + i])));
    expect(await scalar({ a, b }, ({ a, b }) => wmseLoss(a, b, n, 30, 0, true))).toBeCloseTo(want, 5);
  });

  it("wmse (the paper's form): each view whitened on its own by Σ^{-1/2}, over sub-batches", async () => {
    const n = 8;
    const k = 3;
    const a = f32(randn(2 * n, k));
    const b = f32(a.map((r) => r.map((v, j) => v * (1 + j) + 0.7 * rng.normal())));
    // Σ^{-1/2} = V diag(λ^{-1/2}) Vᵀ from a Jacobi eigen-decomposition of the view's covariance.
    const zca = (x: M): M => {
      const mu = Array.from({ length: k }, (_, j) => mean(col(x, j)));
      const xc = x.map((r) => r.map((v, j) => v - mu[j]));
      const A = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => dot(col(xc, i), col(xc, j)) / (x.length - 1)));
      const V: M = Array.from({ length: k }, (_, i) => Array.from({ length: k }, (_, j) => (i === j ? 1 : 0)));
      for (let sweep = 0; sweep < 50; sweep++)
        for (let p = 0; p < k; p++)
          for (let q = p + 1; q < k; q++) {
            if (Math.abs(A[p][q]) < 1e-15) continue;
            const th = 0.5 * Math.atan2(2 * A[p][q], A[q][q] - A[p][p]);
            const [c, s] = [Math.cos(th), Math.sin(th)];
            for (let r = 0; r < k; r++) {
              const [arp, arq] = [A[r][p], A[r][q]];
              A[r][p] = c * arp - s * arq;
              A[r][q] = s * arp + c * arq;
            }
            for (let r = 0; r < k; r++) {
              const [apr, aqr] = [A[p][r], A[q][r]];
              A[p][r] = c * apr - s * aqr;
              A[q][r] = s * apr + c * aqr;
            }
            for (let r = 0; r < k; r++) {
              const [vrp, vrq] = [V[r][p], V[r][q]];
              V[r][p] = c * vrp - s * vrq;
              V[r][q] = s * vrp + c * vrq;
            }
          }
      const W = Array.from({ length: k }, (_, i) =>
        Array.from({ length: k }, (_, j) => V.reduce((acc, _r, e) => acc + (V[i][e] * V[j][e]) / Math.sqrt(A[e][e]), 0)),
      );
      return xc.map((r) => Array.from({ length: k }, (_, j) => dot(r, col(W, j))));
    };
    const sub = (m: M, s: number) => m.slice(s, s + n);
    const loss = (s: number) => {
      const [wa, wb] = [zca(sub(a, s)), zca(sub(b, s))];
      return mean(wa.map((r, i) => 2 - 2 * cos(r, wb[i])));
    };
    const want = (loss(0) + loss(n)) / 2;
    expect(await scalar({ a, b }, ({ a, b }) => wmseLoss(a, b, n, 40))).toBeCloseTo(want, 4);
    // The joint form is a different loss on the same inputs.
    expect(Math.abs((await scalar({ a, b }, ({ a, b }) => wmseLoss(a, b, n, 40, 0, true))) - want)).toBeGreaterThan(1e-3);
  });

  it('whiten: the output covariance is the identity (Σ^{-1/2}, not ‖Σ‖_F^{1/4}-scaled)', async () => {
    const n = 32;
    const k = 3;
    const x = f32(randn(n, k).map((r) => r.map((v, j) => v * (2 + 3 * j))));
    const g = new Graph('infer');
    const xi = g.input('x', [n, k]);
    g.output(whiten(xi, 40), 'w');
    const prog = await Program.compile(g);
    const w = (await prog.run({ x: flat(x) })).w as Float32Array;
    await prog.release();
    const rows: M = Array.from({ length: n }, (_, i) => Array.from(w.subarray(i * k, (i + 1) * k)));
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) expect(dot(col(rows, i), col(rows, j)) / (n - 1)).toBeCloseTo(i === j ? 1 : 0, 3);
  });

  it('moco: InfoNCE against a queue', async () => {
    const K = 7;
    const q = z1.map(unit);
    const k = z2.map(unit);
    const queue = f32(randn(K, d)).map(unit);
    const tau = 0.2;
    const want = mean(q.map((qi, i) => -(dot(qi, k[i]) / tau - logSumExp([dot(qi, k[i]) / tau, ...queue.map((n) => dot(qi, n) / tau)]))));
    expect(await scalar({ q: f32(q), k: f32(k), queue: f32(queue) }, ({ q, k, queue }) => queueInfoNce(q, k, queue, tau))).toBeCloseTo(
      want,
      5,
    );
  });

  it('moco: the queue takes the newest keys first and drops the oldest', async () => {
    const queue = f32(randn(5, 3));
    const keys = f32(randn(2, 3));
    const [next] = await run({ queue, keys }, ({ queue, keys }) => enqueue(queue, keys));
    expect(Array.from(next)).toEqual(Array.from(flat([...keys, ...queue.slice(0, 3)])));
  });

  it('triplet: hardest and next-image negatives', async () => {
    const a = z1.map(unit);
    const p = z2.map(unit);
    const dist = (x: number[], y: number[]) => x.reduce((s, v, i) => s + (v - y[i]) ** 2, 0);
    const m = 0.5;
    const hard = mean(
      a.map((ai, i) => Math.max(0, dist(ai, p[i]) - Math.min(...p.filter((_, j) => j !== i).map((pj) => dist(ai, pj))) + m)),
    );
    const next = mean(a.map((ai, i) => Math.max(0, dist(ai, p[i]) - dist(ai, p[(i + 1) % B]) + m)));
    expect(await scalar({ a: z1, p: z2 }, ({ a, p }) => tripletLoss(a, p, m, true))).toBeCloseTo(hard, 5);
    expect(await scalar({ a: z1, p: z2 }, ({ a, p }) => tripletLoss(a, p, m, false))).toBeCloseTo(next, 5);
  });

  it('dino: cross-entropy of centred, sharpened teacher targets over view pairs; the centre EMA', async () => {
    const K = 4;
    const s = [0, 1, 2].map(() => f32(randn(B, K)));
    const t = [0, 1].map(() => f32(randn(B, K)));
    const c = f32(randn(1, K, 0.1))[0];
    const [ts, tt] = [0.1, 0.05];
    const want = overPairs((i, v) =>
      mean(
        t[i].map((row, b) => {
          const target = softmax(row.map((x, k) => (x - c[k]) / tt));
          const logp = s[v][b].map((x) => x / ts - logSumExp(s[v][b].map((y) => y / ts)));
          return -dot(target, logp);
        }),
      ),
    );
    const [loss, center] = await run({ s0: s[0], s1: s[1], s2: s[2], t0: t[0], t1: t[1], c }, (x) => [
      dinoLoss([x.s0, x.s1, x.s2], [x.t0, x.t1], x.c, ts, tt),
      nextCenter(x.c, [x.t0, x.t1], 0.9),
    ]);
    expect(loss[0]).toBeCloseTo(want, 5);
    const tmean = Array.from({ length: K }, (_, k) => mean([...t[0], ...t[1]].map((r) => r[k])));
    Array.from(center).forEach((v, k) => expect(v).toBeCloseTo(0.9 * c[k] + 0.1 * tmean[k], 6));
  });

  it('swav: Sinkhorn codes are equipartitioned; the swapped prediction loss', async () => {
    const K = 3;
    const scores = [0, 1, 2].map(() => f32(randn(B, K, 0.5)));
    const [eps, tau, iters] = [0.05, 0.1, 3];
    const sinkhornRef = (sc: M) => {
      const n = sc.length;
      let Q = transpose(sc.map((r) => r.map((v) => Math.exp(v / eps))));
      const tot = Q.flat().reduce((a, b) => a + b, 0);
      Q = Q.map((r) => r.map((v) => v / tot));
      for (let it = 0; it < iters; it++) {
        Q = Q.map((r) => {
          const s = r.reduce((a, b) => a + b, 0);
          return r.map((v) => v / s / K);
        });
        for (let j = 0; j < n; j++) {
          const s = Q.reduce((a, r) => a + r[j], 0);
          for (let k = 0; k < K; k++) Q[k][j] = Q[k][j] / s / n;
        }
      }
      return transpose(Q).map((r) => r.map((v) => v * n));
    };
    const codes = scores.slice(0, 2).map(sinkhornRef);
    const want = overPairs((i, v) =>
      mean(
        codes[i].map(
          (q, b) =>
            -dot(
              q,
              scores[v][b].map((x) => x / tau - logSumExp(scores[v][b].map((y) => y / tau))),
            ),
        ),
      ),
    );
    const queue = f32(randn(5, K, 0.5));
    const [loss, code, queued] = await run({ s0: scores[0], s1: scores[1], s2: scores[2], q: queue }, (x) => [
      swappedPredictionLoss([x.s0, x.s1, x.s2], 2, tau, eps, iters),
      sinkhorn(x.s0, eps, iters),
      queuedCodes(x.s0, x.q, eps, iters),
    ]);
    // With a queue: Sinkhorn over [queue; batch], the batch's rows (each still sums to 1).
    const withQueue = sinkhornRef([...queue, ...scores[0]]).slice(queue.length);
    Array.from(queued).forEach((v, i) => expect(v).toBeCloseTo(withQueue[Math.floor(i / K)][i % K], 5));
    expect(Array.from(queued)).not.toEqual(Array.from(code));
    expect(loss[0]).toBeCloseTo(want, 5);
    Array.from(code).forEach((v, i) => expect(v).toBeCloseTo(codes[0][Math.floor(i / K)][i % K], 5));
    // Each sample's code sums to 1; each prototype gets about B/K of the batch.
    for (let b = 0; b < B; b++) expect(code.slice(b * K, (b + 1) * K).reduce((a, v) => a + v, 0)).toBeCloseTo(1, 5);
  });

  it('nce and negative sampling against a memory bank', async () => {
    const K = 4;
    const pos = f32(randn(1, B, 0.3))[0];
    const neg = f32(randn(B, K, 0.3));
    const [tau, N, logZ] = [0.07, 1000, 2.5];
    const shift = logZ + Math.log(K / N);
    const want = mean(pos.map((p, b) => softplus(-(p / tau - shift)) + neg[b].reduce((s, n) => s + softplus(n / tau - shift), 0)));
    expect(await scalar({ pos, neg }, ({ pos, neg }) => nceLoss(pos, neg, tau, logZ, N))).toBeCloseTo(want, 4);
    const ns = mean(
      pos.map((p, b) => -Math.log(1 / (1 + Math.exp(-p / 0.1))) - neg[b].reduce((s, n) => s + Math.log(1 / (1 + Math.exp(n / 0.1))), 0)),
    );
    expect(await scalar({ pos, neg }, ({ pos, neg }) => negativeSamplingLoss(pos, neg, 0.1))).toBeCloseTo(ns, 5);
    // With a logit bias b: −log σ(s⁺/τ + b) − Σ log(1 − σ(s⁻/τ + b)).
    const sig = (x: number) => 1 / (1 + Math.exp(-x));
    const nsb = mean(pos.map((p, b) => -Math.log(sig(p / 0.1 - 3)) - neg[b].reduce((s, n) => s + Math.log(1 - sig(n / 0.1 - 3)), 0)));
    expect(await scalar({ pos, neg }, ({ pos, neg }) => negativeSamplingLoss(pos, neg, 0.1, -3))).toBeCloseTo(nsb, 4);
  });

  it('memory bank: rows at the batch indices are replaced, the rest kept', async () => {
    const g = new Graph('train');
    const bank = g.input('bank', [5, 2]);
    const idx = g.input('idx', [2], 'int64');
    const rows = g.input('rows', [2, 2]);
    g.output(scatterRows(bank, idx, rows), 'next');
    const p = await Program.compile(g, { device: 'cpu' });
    const r = await p.run({
      bank: Float32Array.from([0, 0, 1, 1, 2, 2, 3, 3, 4, 4]),
      idx: BigInt64Array.from([3n, 1n]),
      rows: Float32Array.from([9, 9, 7, 7]),
    });
    await p.release();
    expect(Array.from(r.next as Float32Array)).toEqual([0, 0, 7, 7, 2, 2, 9, 9, 4, 4]);
  });

  it('dae and context: MSE, and MSE over the erased pixels only', async () => {
    const a = f32(randn(3, 4));
    const b = f32(randn(3, 4));
    const mask = [
      [1, 0, 0, 1],
      [0, 0, 0, 0],
      [1, 1, 0, 0],
    ];
    expect(await scalar({ a, b }, ({ a, b }) => mse(a, b))).toBeCloseTo(mean(a.flatMap((r, i) => r.map((v, j) => (v - b[i][j]) ** 2))), 5);
    const sel = a.flatMap((r, i) => r.map((v, j) => (mask[i][j] ? (v - b[i][j]) ** 2 : null))).filter((v) => v !== null) as number[];
    expect(await scalar({ a, b, mask }, ({ a, b, mask }) => maskedMse(a, b, mask))).toBeCloseTo(mean(sel), 5);
  });

  it('distill: 1 − cos, MSE and T²·KL of softened outputs', async () => {
    const T = 4;
    expect(await scalar({ s: z1, t: z2 }, ({ s, t }) => distillationLoss(s, t, 'cosine'))).toBeCloseTo(
      1 - mean(z1.map((s, i) => cos(s, z2[i]))),
      5,
    );
    expect(await scalar({ s: z1, t: z2 }, ({ s, t }) => distillationLoss(s, t, 'mse'))).toBeCloseTo(
      mean(z1.flatMap((r, i) => r.map((v, j) => (v - z2[i][j]) ** 2))),
      5,
    );
    const kl = mean(
      z1.map((s, i) => {
        const pt = softmax(z2[i].map((v) => v / T));
        const ps = softmax(s.map((v) => v / T));
        return pt.reduce((acc, p, k) => acc + p * Math.log(p / ps[k]), 0);
      }),
    );
    expect(await scalar({ s: z1, t: z2 }, ({ s, t }) => distillationLoss(s, t, 'kl', T))).toBeCloseTo(T * T * kl, 5);
  });

  it('obow and bownet: bag-of-words targets are soft assignments averaged over locations', async () => {
    const [Bn, L, C, K] = [2, 3, 4, 5];
    const local = Array.from({ length: Bn * L }, () => unit(randn(1, C)[0]));
    const vocab = f32(randn(K, C).map(unit));
    const bow = (assign: (x: number[]) => number[]) =>
      Array.from({ length: Bn }, (_, b) => {
        const codes = local.slice(b * L, (b + 1) * L).map(assign);
        return Array.from({ length: K }, (_, k) => mean(codes.map((c) => c[k])));
      });
    // OBoW: softmax of cosine / κ.
    const kappa = 0.1;
    const want = bow((x) => softmax(vocab.map((w) => cos(x, w) / kappa)));
    const g = new Graph('train');
    const l = g.input('local', [Bn, L, C]);
    const v = g.input('vocab', [K, C]);
    g.output(bowTarget(l, v, kappa), 'bow');
    const p = await Program.compile(g, { device: 'cpu' });
    const got = (await p.run({ local: flat(f32(local)), vocab: flat(vocab) })).bow as Float32Array;
    await p.release();
    Array.from(got).forEach((x, i) => expect(x).toBeCloseTo(want[Math.floor(i / K)][i % K], 5));
    // BoWNet: softmax of −d²/δ over the words.
    const delta = 0.7;
    const want2 = bow((x) => softmax(vocab.map((w) => -x.reduce((s2, xi, j) => s2 + (xi - w[j]) ** 2, 0) / delta)));
    const prog = await bowProgram(flat(vocab), K, C, Bn, L, delta);
    const got2 = (await prog.run({ local: flat(f32(local)) })).bow as Float32Array;
    await prog.release();
    Array.from(got2).forEach((x, i) => expect(x).toBeCloseTo(want2[Math.floor(i / K)][i % K], 5));
  });

  it('deepcluster: cross-entropy against one-hot pseudo-labels', async () => {
    const K = 4;
    const logits = f32(randn(B, K));
    const labels = [0, 3, 1, 1, 2, 0];
    const onehot = labels.map((l) => Array.from({ length: K }, (_, k) => (k === l ? 1 : 0)));
    const want = mean(logits.map((r, b) => -(r[labels[b]] - logSumExp(r))));
    expect(await scalar({ t: onehot, l: logits }, ({ t, l }) => softCrossEntropy(t, o.logSoftmax(l, 1)))).toBeCloseTo(want, 5);
  });
});

describe('gradients of the new losses against finite differences', () => {
  // Targets behind a stop-gradient (teachers, codes) are left out of `wrt`: their true derivative is not the engine's.
  const cases: [string, Record<string, number[]>, (x: Record<string, Tensor>) => Tensor, string[]?][] = [
    ['barlow', { a: [8, 4], b: [8, 4] }, ({ a, b }) => barlowTwinsLoss(a, b, 0.05)],
    ['vicreg', { a: [8, 4], b: [8, 4] }, ({ a, b }) => vicregLoss(a, b, { lambda: 1, mu: 1, nu: 1, gamma: 2, eps: 1e-4 })],
    ['wmse', { a: [8, 3], b: [8, 3] }, ({ a, b }) => wmseLoss(a, b, 8, 25)],
    ['byol', { p: [4, 3], z: [4, 3] }, ({ p, z }) => byolLoss(p, z), ['p']],
    [
      'moco',
      { q: [4, 3], k: [4, 3], queue: [5, 3] },
      ({ q, k, queue }) => queueInfoNce(o.l2normalize(q, 1), o.l2normalize(k, 1), queue, 0.5),
    ],
    // The next-image variant: hard mining's min switches under the finite difference's step.
    ['triplet', { a: [5, 3], p: [5, 3] }, ({ a, p }) => tripletLoss(a, p, 5, false)],
    ['dino', { s0: [3, 4], s1: [3, 4], t0: [3, 4], t1: [3, 4] }, (x) => dinoLoss([x.s0, x.s1], [x.t0, x.t1], x.t0, 0.5, 0.3), ['s0', 's1']],
    // SwAV: the third crop only predicts (its scores feed no code), so its finite difference is exact.
    ['swav', { s0: [4, 3], s1: [4, 3], s2: [4, 3] }, (x) => swappedPredictionLoss([x.s0, x.s1, x.s2], 2, 0.5, 0.5, 3), ['s2']],
    ['nce', { p: [4], n: [4, 3] }, ({ p, n }) => nceLoss(p, n, 0.5, 1, 10)],
    ['distill-kl', { s: [3, 4], t: [3, 4] }, ({ s, t }) => distillationLoss(s, t, 'kl', 2), ['s']],
  ];
  for (const [name, inputs, f, wrt] of cases)
    it(name, async () => {
      const r = await checkGradient({ name, inputs, f, wrt });
      expect(r.worst, r.details.join('\n')).toBeLessThan(2e-3);
    });
});

describe('swav queue schedule', () => {
  it('joins the codes once the queue is full and queue_start_epochs have passed, and only for batches under 256', async () => {
    const hp = Object.fromEntries(Object.entries(swav.params).map(([k, p]) => [k, p.default]));
    const feeds = async (batchSize: number, epoch: number, step: number) => {
      const rt = await swav.runtime!({ hp, batchSize } as unknown as RuntimeEnv);
      return rt.feeds!({ epoch, step } as StepInfo) as Record<string, number>;
    };
    expect(hp.queue).toBe(3840);
    expect((await feeds(64, 0, 70)).swav_queue_on).toBe(0); // full (70 × 64 ≥ 3840) but epoch 0
    expect((await feeds(64, 1, 59)).swav_queue_on).toBe(0); // 59 × 64 = 3776 rows: not yet full
    expect((await feeds(64, 1, 60)).swav_queue_on).toBe(1);
    expect(await feeds(256, 5, 1000)).not.toHaveProperty('swav_queue_on');
  });
});
