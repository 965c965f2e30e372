/** Weight initialisers, all drawing from an explicit seeded Rng. */
import type { Rng } from '../tensor/creation.ts';
import type { Tensor } from '../tensor/tensor.ts';

/** PyTorch's fan-in / fan-out for a weight of shape [d0, d1, k…]: fan_in = d1·k, fan_out = d0·k. */
export function fans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: (shape[1] ?? 1) * receptive, fanOut: shape[0]! * receptive };
}

export function uniformInPlace(t: Tensor, bound: number, rng: Rng): void {
  const s = t.storage;
  for (let i = 0; i < s.length; i++) s[i] = (2 * rng.uniform() - 1) * bound;
}

/**
 * PyTorch's default for Conv/Linear weights: kaiming_uniform_(a=√5), i.e. U(−b, b) with
 * b = gain·√(3/fan_in), gain = √(2/(1+5)), which simplifies to b = 1/√fan_in.
 */
export function torchDefaultWeight(t: Tensor, rng: Rng): void {
  uniformInPlace(t, 1 / Math.sqrt(fans(t.shape).fanIn), rng);
}

/** PyTorch's default bias: U(−1/√fan_in, 1/√fan_in) with the weight's fan_in. */
export function torchDefaultBias(bias: Tensor, weightShape: readonly number[], rng: Rng): void {
  const { fanIn } = fans(weightShape);
  uniformInPlace(bias, fanIn > 0 ? 1 / Math.sqrt(fanIn) : 0, rng);
}

/** Glorot/Xavier uniform: U(−b, b), b = gain·√(6/(fan_in + fan_out)). */
export function xavierUniform(t: Tensor, rng: Rng, gain = 1): void {
  const { fanIn, fanOut } = fans(t.shape);
  uniformInPlace(t, gain * Math.sqrt(6 / (fanIn + fanOut)), rng);
}

/** The gain PyTorch's calculate_gain uses for leaky ReLU with the given slope. */
export function leakyReluGain(slope = 0.01): number {
  return Math.sqrt(2 / (1 + slope * slope));
}
