/**
 * VICReg (Bardes et al., 2022): invariance (MSE between the views), variance (a hinge keeping
 * each dimension's std above γ) and covariance (off-diagonal covariances towards 0).
 */
import { vicregLoss } from '../losses/vicreg.js';
import { encodeViews, headViews, projector } from './heads.js';
import type { Method } from './types.js';

export const vicreg: Method = {
  name: 'vicreg',
  summary: 'redundancy reduction: variance, invariance and covariance terms on the two views',
  views: 2,
  augment: 'byol',
  params: {
    lambda: { default: 25, help: 'invariance weight λ' },
    mu: { default: 25, help: 'variance weight μ' },
    nu: { default: 1, help: 'covariance weight ν' },
    gamma: { default: 1, help: 'target std γ' },
    eps: { default: 1e-4, help: 'ε inside the std' },
    proj_dim: { default: 2048, help: 'projector width, 3 layers (smaller for small data)' },
  },
  optimizer: { name: 'lars', lrPer256: 0.3, weightDecay: 1e-4 },
  build(ctx, backbone, views, hp) {
    const z = headViews(encodeViews(ctx, backbone, views), (h) => this.head!(ctx, h, hp));
    return { loss: vicregLoss(z[0], z[1], { lambda: hp.lambda, mu: hp.mu, nu: hp.nu, gamma: hp.gamma, eps: hp.eps }), monitor: z[0] };
  },
  head: (ctx, h, hp) => projector(ctx, h, [hp.proj_dim, hp.proj_dim, hp.proj_dim]),
};
