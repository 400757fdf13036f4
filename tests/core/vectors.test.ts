/** Centring: rows minus a reference mean, normalised again (sslkit index --centre, eval --centre). */
import { describe, expect, it } from 'vitest';
import { centreRows, meanRow } from '../../core/vectors.js';

describe('meanRow and centreRows', () => {
  it('subtract the mean row and renormalise, by hand on two 2-d rows', () => {
    const x = Float32Array.from([0.6, 0.8, 0.8, 0.6]);
    const mean = meanRow(x, 2);
    mean.forEach((v) => expect(v).toBeCloseTo(0.7, 6));
    centreRows(x, 2, mean);
    // (−0.1, 0.1) and (0.1, −0.1), normalised: opposite unit vectors, cosine −1 where it was 0.96.
    const r = Math.SQRT1_2;
    [-r, r, r, -r].forEach((v, i) => expect(x[i]).toBeCloseTo(v, 6));
  });

  it('leave a row equal to the centre at zero (no direction), not NaN', () => {
    const x = Float32Array.from([1, 0]);
    centreRows(x, 2, [1, 0]);
    expect(Array.from(x)).toEqual([0, 0]);
  });
});
