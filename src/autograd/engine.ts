import type { Tensor } from '../tensor/tensor.ts';
import { noGrad } from './tape.ts';
import { add, sumToShape } from './ops/elementwise.ts';
import { ones, zeros } from '../tensor/creation.ts';
import { isWholeStorage, outputArray, releaseArray, storageKey, tensorFromArray } from '../tensor/tensor.ts';
import { shapeStr } from '../tensor/layout.ts';

export { noGrad, record, type BackwardFn } from './tape.ts';

/** Tensors reachable from root through recorded nodes, each after everything it depends on. */
function topoOrder(root: Tensor): Tensor[] {
  const order: Tensor[] = [];
  const seen = new Set<number>();
  const stack: { t: Tensor; expanded: boolean }[] = [{ t: root, expanded: false }];
  while (stack.length > 0) {
    const top = stack.pop()!;
    if (top.expanded) { order.push(top.t); continue; }
    if (seen.has(top.t.id)) continue;
    seen.add(top.t.id);
    stack.push({ t: top.t, expanded: true });
    for (const inp of top.t.gradNode?.inputs ?? []) if (inp.requiresGrad && !seen.has(inp.id)) stack.push({ t: inp, expanded: false });
  }
  return order;
}

/**
 * Propagates gy from root to every tensor in its graph; returns the gradients of the tensors in
 * `keep` (and of every leaf or retainGrad tensor) keyed by tensor id.
 *
 * Memory: the gradient of an intermediate tensor is dead once its node's backward has run, unless
 * it is kept or its storage is still referenced by another pending gradient (add passes gy on to
 * both inputs, reshape returns a view of it). Storage is counted per buffer, and a buffer whose
 * count drops to zero goes back to the array pool (tensor.ts), unless it is the caller's seed or
 * belongs to any tensor of the forward graph.
 */
function propagate(root: Tensor, gy?: Tensor, keep: ReadonlySet<number> = new Set()): Map<number, Tensor> {
  if (!root.requiresGrad) throw new Error('backward: the tensor does not require grad (no recorded graph leads to it)');
  let seed = gy;
  if (!seed) {
    if (root.size !== 1) throw new Error(`backward: output of shape ${shapeStr(root.shape)} is not a scalar; pass an explicit upstream gradient`);
    seed = ones(root.shape, root.dtype);
  } else if (shapeStr(seed.shape) !== shapeStr(root.shape)) {
    throw new Error(`backward: upstream gradient ${shapeStr(seed.shape)} does not match output ${shapeStr(root.shape)}`);
  }
  const grads = new Map<number, Tensor>([[root.id, seed]]);
  const order = topoOrder(root);
  const protectedBuffers = new Set<object>([storageKey(seed.storage)]);
  for (const t of order) {
    protectedBuffers.add(storageKey(t.storage));
    for (const inp of t.gradNode?.inputs ?? []) protectedBuffers.add(storageKey(inp.storage));
  }
  const refs = new Map<object, number>([[storageKey(seed.storage), 1]]);
  const hold = (g: Tensor): void => { const k = storageKey(g.storage); refs.set(k, (refs.get(k) ?? 0) + 1); };
  const drop = (g: Tensor): void => {
    const k = storageKey(g.storage);
    const left = (refs.get(k) ?? 1) - 1;
    if (left > 0) { refs.set(k, left); return; }
    refs.delete(k);
    if (!protectedBuffers.has(k)) releaseArray(g.storage);
  };
  noGrad(() => {
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i]!;
      const node = t.gradNode;
      const g = grads.get(t.id);
      if (!node || !g) continue;
      const inputGrads = node.backward(g);
      node.inputs.forEach((inp, k) => {
        const gi = inputGrads[k];
        if (!gi || !inp.requiresGrad) return;
        const reduced = sumToShape(gi, inp.shape);
        const prev = grads.get(inp.id);
        const next = prev ? add(prev, reduced) : reduced;
        grads.set(inp.id, next);
        hold(next);
        if (prev) drop(prev);
      });
      if (!t.retainsGrad && !keep.has(t.id)) { grads.delete(t.id); drop(g); }
    }
  });
  return grads;
}

/**
 * Reverse-mode backward from root: leaves that require grad (and tensors marked with
 * retainGrad) accumulate into `.grad`, as in PyTorch.
 */
export function backward(root: Tensor, gy?: Tensor): void {
  const grads = propagate(root, gy);
  const order = topoOrder(root);
  // A new `.grad` must own its storage (an optimizer may hand it back for reuse, see Adam.zeroGrad):
  // a gradient that passed through unchanged can share storage with the seed, a graph value or
  // another leaf's gradient, and is copied then.
  const taken = new Set<object>(gy ? [storageKey(gy.storage)] : []);
  for (const t of order) taken.add(storageKey(t.storage));
  for (const t of order) {
    const g = grads.get(t.id);
    if (!g || !(t.isLeaf || t.retainsGrad)) continue;
    if (t.grad) { t.grad = noGrad(() => add(t.grad!, g)); continue; }
    const key = storageKey(g.storage);
    t.grad = taken.has(key) ? copyOf(g) : g;
    taken.add(storageKey(t.grad.storage));
  }
}

function copyOf(t: Tensor): Tensor {
  const out = outputArray(t.dtype, t.size);
  out.set(t.values());
  return tensorFromArray(out, t.shape);
}

/**
 * Opt-in end of a training step: returns the storage of every intermediate (non-leaf) tensor of
 * root's finished graph to the array pool (tensor.ts), so the next step's forward reuses it
 * instead of faulting in fresh pages. Call it only after backward and after the last read of any
 * graph value (loss.item(), the optimizer step): afterwards the graph's non-leaf tensors, root
 * included, must not be read, and their nodes are cut so that backward through them throws.
 *
 * Never released: the storage of any leaf reachable from root (parameters, the input batch,
 * constants, running statistics — including non-leaf views that share it, such as a reshaped
 * bias), any `.grad` in the graph, and the storage of the tensors in `keep` (what the caller
 * still holds). Buffers are compared by storageKey (their ArrayBuffer), so views are covered too.
 */
export function releaseGraph(root: Tensor, keep: readonly Tensor[] = []): void {
  if (!root.gradNode) return;
  const nodes: Tensor[] = [];
  const protectedBuffers = new Set<object>();
  for (const t of keep) protectedBuffers.add(storageKey(t.storage));
  const seen = new Set<number>([root.id]);
  const stack: Tensor[] = [root];
  while (stack.length > 0) {
    const t = stack.pop()!;
    if (t.grad) protectedBuffers.add(storageKey(t.grad.storage));
    if (!t.gradNode) { protectedBuffers.add(storageKey(t.storage)); continue; }
    nodes.push(t);
    for (const inp of t.gradNode.inputs) if (!seen.has(inp.id)) { seen.add(inp.id); stack.push(inp); }
  }
  const released = new Set<object>();
  for (const t of nodes) {
    for (const a of t.gradNode!.saved ?? []) releaseArray(a);
    t.gradNode = null;
    t.requiresGrad = false;
    // Only a whole-buffer array can be pooled (releaseArray ignores views), once per buffer.
    const a = t.storage, buf = storageKey(a);
    if (!isWholeStorage(a) || protectedBuffers.has(buf) || released.has(buf)) continue;
    released.add(buf);
    releaseArray(a);
  }
}

/**
 * Gradients of root with respect to any tensors in its graph, leaves or intermediate
 * activations (Grad-CAM needs ∂score/∂activation), without touching `.grad`.
 * A tensor root does not depend on gets a zero gradient.
 */
export function grad(root: Tensor, wrt: readonly Tensor[], gy?: Tensor): Tensor[] {
  const grads = propagate(root, gy, new Set(wrt.map((t) => t.id)));
  return wrt.map((t) => grads.get(t.id) ?? zeros(t.shape, t.dtype));
}
