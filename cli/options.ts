/** Parsers for command-line values that say what was wrong. */
import { InvalidArgumentError } from 'commander';

export function intOption(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got '${v}'`);
    return n;
  };
}

export function floatOption(name: string, min = 0) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number ≥ ${min}, got '${v}'`);
    return n;
  };
}

/** Repeated `--set key=value` into a record of numbers. */
export function keyValue(v: string, prev: Record<string, number> = {}): Record<string, number> {
  const m = /^([A-Za-z_][\w]*)=(.+)$/.exec(v);
  if (!m) throw new InvalidArgumentError(`expected key=value, got '${v}'`);
  const n = Number(m[2]);
  if (!Number.isFinite(n)) throw new InvalidArgumentError(`value of '${m[1]}' must be a number, got '${m[2]}'`);
  return { ...prev, [m[1]]: n };
}
