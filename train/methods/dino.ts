/**
 * DINO (Caron et al., 2021): self-distillation with no labels. An EMA teacher sees the two global
 * crops, the student every crop (multi-crop: 2 global + `local_crops` small ones); the student
 * matches the teacher's centred, sharpened distribution over K prototypes. Centring (an EMA of
 * the teacher's mean output) and sharpening (a low teacher temperature, warmed up from 0.04)
 * together prevent collapse.
 */
import { init, mlp, type Ctx } from '../engine/nn.js';
import type { Tensor } from '../engine/graph.js';
import * as o from '../engine/ops.js';
import { dinoLoss, nextCenter } from '../losses/dino.js';
import { buffer, updateBuffer } from './state.js';
import { encodeViews, teacherCtx } from './heads.js';
import type { Method } from './types.js';

/** MLP → L2-normalised bottleneck → weight-normalised linear layer to K prototypes (weight norm g = 1). */
function dinoHead(ctx: Ctx, h: Tensor, hp: Record<string, number>): Tensor {
  return ctx.within('dino_head', () => {
    const b = o.l2normalize(mlp(ctx, 'mlp', h, { dims: [hp.head_hidden, hp.head_hidden, hp.bottleneck], activation: 'gelu' }), 1);
    const v = ctx.param('last.weight', [hp.out_dim, hp.bottleneck], init.truncNormal(0.02));
    return o.gemm(b, o.l2normalize(v, 1), { transB: true });
  });
}

export const dino: Method = {
  name: 'dino',
  summary: 'teacher-student: match an EMA teacher’s centred, sharpened prototype distribution (multi-crop)',
  views: 2,
  localCropsParam: 'local_crops',
  augment: 'multicrop',
  params: {
    out_dim: { default: 4096, help: 'prototypes K (4096 for small data)' },
    head_hidden: { default: 2048, help: 'head MLP hidden width' },
    bottleneck: { default: 256, help: 'L2-normalised bottleneck width' },
    student_temp: { default: 0.1, help: 'student temperature τ_s' },
    teacher_temp: { default: 0.07, help: 'teacher temperature τ_t after warm-up' },
    warmup_teacher_temp: { default: 0.04, help: 'teacher temperature at the start' },
    warmup_teacher_temp_frac: { default: 0.3, help: 'fraction of training over which τ_t rises linearly' },
    center_momentum: { default: 0.9, help: 'EMA rate of the centre' },
    ema: { default: 0.996, help: 'teacher EMA momentum at the start (cosine schedule to 1)' },
    local_crops: { default: 6, help: 'small local crops per image (multi-crop)' },
  },
  optimizer: { name: 'adamw', lrPer256: 5e-4, weightDecay: 0.04 },
  teacherMomentum: (hp) => hp.ema,
  build(ctx, backbone, views, hp) {
    const student = encodeViews(ctx, backbone, views).map((h) => dinoHead(ctx, h, hp));
    const t = teacherCtx(ctx);
    const teacher = encodeViews(t, backbone, views.slice(0, 2)).map((h) => o.stopGradient(dinoHead(t, h, hp)));
    const center = ctx.within('dino', () => buffer(ctx, 'center', [1, hp.out_dim]));
    const teacherTemp = ctx.g.input('dino_teacher_temp', []);
    const loss = dinoLoss(student, teacher, center, hp.student_temp, teacherTemp);
    updateBuffer(ctx, center, nextCenter(center, teacher, hp.center_momentum));
    return { loss, monitor: student[0] };
  },
  runtime: ({ hp }) => ({
    feeds: (s) => {
      const warm = Math.max(1, Math.round(hp.warmup_teacher_temp_frac * s.totalSteps));
      const f = Math.min(1, s.step / warm);
      return { dino_teacher_temp: hp.warmup_teacher_temp + f * (hp.teacher_temp - hp.warmup_teacher_temp) };
    },
  }),
  head: (ctx, h, hp) => dinoHead(ctx, h, hp),
};
