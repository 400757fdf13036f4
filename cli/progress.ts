/**
 * Progress for long work: a cli-progress bar on a terminal, and sparse plain lines otherwise
 * (CI logs, pipes), so logs stay readable.
 */
import cliProgress from 'cli-progress';

export interface Progress {
  update(done: number, payload?: Record<string, string | number>): void;
  stop(): void;
  /** Prints a line without breaking the bar. */
  log(line: string): void;
}

export function progressBar(total: number, format: string, plainEvery = 0): Progress {
  if (process.stderr.isTTY) {
    const bar = new cliProgress.SingleBar(
      { format, stream: process.stderr, etaBuffer: 20, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
    let started = false;
    return {
      update(done, payload) {
        if (!started) {
          bar.start(total, 0, payload);
          started = true;
        }
        bar.update(done, payload);
      },
      stop: () => started && bar.stop(),
      log(line) {
        if (started) process.stderr.write('\r\x1b[2K');
        process.stderr.write(`${line}\n`);
        if (started) bar.render();
      },
    };
  }
  let last = 0;
  const t0 = Date.now();
  return {
    update(done, payload) {
      if (plainEvery > 0 && (done - last >= plainEvery || done === total)) {
        last = done;
        const eta = done > 0 ? ((Date.now() - t0) / done) * (total - done) : 0;
        const extra = payload
          ? Object.entries(payload)
              .map(([k, v]) => `${k} ${v}`)
              .join(', ')
          : '';
        process.stderr.write(`  ${done}/${total} ${extra} eta ${Math.round(eta / 1000)}s\n`);
      }
    },
    stop() {},
    log: (line) => process.stderr.write(`${line}\n`),
  };
}

/**
 * Trainer hooks that draw one training progress bar (created at the first step, when the total
 * is known) and print log lines without breaking it.
 */
export function trainingProgress() {
  let bar: Progress | null = null;
  return {
    log: (line: string) => (bar ? bar.log(line) : process.stderr.write(`${line}\n`)),
    onStep: (s: { step: number; totalSteps: number; epoch: number; loss: number; imgPerSec: number }) => {
      bar ??= progressBar(
        s.totalSteps,
        'train [{bar}] {value}/{total} steps | epoch {epoch} | loss {loss} | {ips} img/s | eta {eta_formatted}',
        50,
      );
      bar.update(s.step, { epoch: s.epoch, loss: s.loss.toFixed(4), ips: Math.round(s.imgPerSec) });
    },
    stop: () => bar?.stop(),
  };
}
