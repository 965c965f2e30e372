/**
 * The storage scopes of training and inference, so that code above nn (svdd, the CLI, programs)
 * never hands storage back itself.
 */
import { backward, releaseGraph } from '../autograd/engine.ts';
import type { Tensor } from '../tensor/tensor.ts';
export { tidy } from '../tensor/engine.ts';

/** What trainStep needs of an optimizer (Adam). */
export interface StepOptimizer {
  /** Drops the parameters' gradients, handing their storage back to the engine. */
  zeroGrad(): void;
  step(): void;
}

/**
 * One optimisation step as a storage scope: the gradients are cleared, `forward` computes the
 * loss (and may read graph values into plain numbers, `extra`), backward runs, the optimizer
 * updates the parameters, the loss is read, and then every intermediate buffer of the step's
 * graph goes back to the engine's pool for the next step. No tensor of the graph may be used
 * afterwards; parameters, inputs and other leaves are kept.
 */
export function trainStep<E>(opt: StepOptimizer, forward: () => { loss: Tensor; extra?: E }): { loss: number; extra: E | undefined } {
  opt.zeroGrad();
  const { loss, extra } = forward();
  backward(loss);
  opt.step();
  const value = loss.item();
  releaseGraph(loss);
  return { loss: value, extra };
}
