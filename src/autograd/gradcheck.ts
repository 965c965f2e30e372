import { grad, noGrad } from './engine.ts';
import { Rng, randNormal } from '../tensor/creation.ts';
import { Tensor, tensorFromArray } from '../tensor/tensor.ts';

export interface GradCheckResult {
  /** Worst |analytic − numeric| / max(1, |numeric|) over all checked entries. */
  maxError: number;
  worst: { input: number; index: number; analytic: number; numeric: number } | null;
}

/**
 * Central finite differences in float64: compares the autograd gradient of
 * L = Σ f(inputs) · G (G a fixed random projection, so every output entry matters) with
 * (L(x + h) − L(x − h)) / 2h, for every entry of every input. Inputs must be float64.
 */
export function gradCheck(f: (...xs: Tensor[]) => Tensor, inputs: Tensor[], opts: { h?: number; seed?: number } = {}): GradCheckResult {
  const h = opts.h ?? 1e-6;
  for (const x of inputs) if (x.dtype !== 'float64') throw new Error('gradCheck: inputs must be float64');
  const leaves = inputs.map((x) => tensorFromArray(x.toArray(), x.shape).requireGrad());
  const out = f(...leaves);
  const projection = randNormal(out.shape, 0, 1, new Rng(opts.seed ?? 7), 'float64');
  const objective = (y: Tensor): number => {
    const yv = y.values(), pv = projection.values();
    let s = 0;
    for (let i = 0; i < yv.length; i++) s += yv[i]! * pv[i]!;
    return s;
  };
  const analytic = grad(out, leaves, projection);
  let maxError = 0;
  let worst: GradCheckResult['worst'] = null;
  noGrad(() => {
    leaves.forEach((leaf, k) => {
      const data = leaf.storage;
      const ga = analytic[k]!.values();
      for (let i = 0; i < data.length; i++) {
        const orig = data[i]!;
        data[i] = orig + h; const plus = objective(f(...leaves));
        data[i] = orig - h; const minus = objective(f(...leaves));
        data[i] = orig;
        const numeric = (plus - minus) / (2 * h);
        const err = Math.abs(ga[i]! - numeric) / Math.max(1, Math.abs(numeric));
        if (err > maxError) { maxError = err; worst = { input: k, index: i, analytic: ga[i]!, numeric }; }
      }
    });
  });
  return { maxError, worst };
}
