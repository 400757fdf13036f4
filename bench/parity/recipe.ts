/**
 * bench/parity's recipe (issue 13), as sslkit's training options: batch 256, AdamW lr 1e-3 wd
 * 1e-6, no warm-up, and per method the heads train_torch.py builds. bench/continue.ts trains it too.
 */
export const PARITY_RECIPE = { batchSize: 256, optimizer: 'adamw', lr: 1e-3, weightDecay: 1e-6, warmupEpochs: 0 } as const;

/** Per method: sslkit's --set values and the PyTorch script's flags for the same heads. */
export const PARITY_HEADS: Record<string, { hp: Record<string, number>; torch: string[] }> = {
  simclr: { hp: { proj_hidden: 256, proj_out: 128, temperature: 0.2 }, torch: ['--hidden', '256', '--out-dim', '128'] },
  byol: { hp: { proj_hidden: 256, proj_out: 128, ema: 0.99 }, torch: ['--hidden', '256', '--out-dim', '128'] },
  vicreg: { hp: { proj_dim: 256 }, torch: ['--hidden', '256'] },
  // The papers' head shapes at the recipe's scale: SimSiam's 4:1 predictor bottleneck, Barlow Twins' three equal layers.
  simsiam: { hp: { proj_dim: 512, pred_hidden: 128 }, torch: ['--hidden', '512', '--pred-hidden', '128'] },
  barlow: { hp: { proj_dim: 512, lambda: 5e-3 }, torch: ['--hidden', '512', '--lambda', '0.005'] },
  moco: {
    hp: { proj_hidden: 256, proj_out: 128, queue: 4096, temperature: 0.2, momentum: 0.99 },
    torch: ['--hidden', '256', '--out-dim', '128', '--queue', '4096', '--temperature', '0.2', '--ema', '0.99'],
  },
};
