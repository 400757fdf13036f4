/** `--limit N` everywhere: a seeded random sample, stratified by class, never "the first N". */
import { describe, expect, it } from 'vitest';
import { sampleIndices, sampleSet, type ImageSet } from '../../core/image-set.js';

/** A set stored class by class, as image folders and CIFAR-10's JPEG layout are: 3 classes of 40, 30, 30. */
function sortedSet(): ImageSet {
  const labels = Int32Array.from({ length: 100 }, (_, i) => (i < 40 ? 0 : i < 70 ? 1 : 2));
  const pixels = Uint8Array.from({ length: 100 }, (_, i) => i);
  return { n: 100, c: 1, h: 1, w: 1, pixels, labels, classes: ['a', 'b', 'c'] };
}

const counts = (labels: Int32Array) => [0, 1, 2].map((c) => labels.filter((l) => l === c).length);

describe('sampleSet', () => {
  it('keeps every class at its share of a class-sorted set (the first 10 would all be class a)', () => {
    const s = sampleSet(sortedSet(), 10);
    expect(s.n).toBe(10);
    expect(counts(s.labels!)).toEqual([4, 3, 3]);
  });

  it('rounds shares by largest remainder so the sample has exactly n images', () => {
    for (const n of [1, 7, 11, 33, 99]) expect(sampleSet(sortedSet(), n).n).toBe(n);
    expect(counts(sampleSet(sortedSet(), 7).labels!)).toEqual([3, 2, 2]);
  });

  it('is random within each class, the same for the same seed, other for another seed, and in original order', () => {
    const a = sampleIndices(sortedSet().labels, 100, 10, 0);
    expect(Array.from(a)).toEqual(Array.from(sampleIndices(sortedSet().labels, 100, 10, 0)));
    expect(Array.from(a)).not.toEqual(Array.from(sampleIndices(sortedSet().labels, 100, 10, 1)));
    expect(Array.from(a)).toEqual([...a].sort((x, y) => x - y));
    expect(Array.from(a.filter((i) => i < 40))).not.toEqual([0, 1, 2, 3]);
    // The pixels follow their images.
    const s = sampleSet(sortedSet(), 10);
    expect(Array.from(s.pixels)).toEqual(Array.from(a));
  });

  it('samples an unlabelled set uniformly, and returns the whole set when n is absent or too large', () => {
    const s = sortedSet();
    const unlabelled = { ...s, labels: null };
    expect(sampleSet(unlabelled, 25).n).toBe(25);
    expect(sampleSet(s, 100)).toBe(s);
    expect(sampleSet(s, 500)).toBe(s);
    expect(sampleSet(s)).toBe(s);
  });
});
