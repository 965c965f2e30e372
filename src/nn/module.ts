import type { Tensor } from '../tensor/tensor.ts';
import { shapeStr } from '../tensor/layout.ts';

/**
 * Base class of layers and networks: parameters, buffers and child modules registered by
 * name, so state dicts use PyTorch's dotted names (`conv1.weight`, `bn1.running_mean`).
 */
export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly buffers = new Map<string, Tensor>();
  private readonly children = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  private readonly hooks = new Set<(output: Tensor) => void>();

  /**
   * forward() plus forward hooks: containers call their children through this, so a hook can
   * capture any layer's output (Grad-CAM takes ∂score/∂activation of a chosen conv layer).
   */
  call(x: Tensor): Tensor {
    const y = this.forward(x);
    for (const h of this.hooks) h(y);
    return y;
  }

  /** Whether a forward hook is registered (then call() must run, so that it sees the output). */
  protected get hasHooks(): boolean { return this.hooks.size > 0; }

  /** Registers fn to see this module's output on every call(); returns a remover. */
  addForwardHook(fn: (output: Tensor) => void): () => void {
    this.hooks.add(fn);
    return () => { this.hooks.delete(fn); };
  }

  /** A direct child or descendant by dotted name (e.g. 'conv2'). */
  getModule(name: string): Module {
    const found = this.namedModules().find(([n]) => n === name);
    if (!found) throw new Error(`no layer '${name}' (layers: ${this.namedModules().map(([n]) => n).filter(Boolean).join(', ')})`);
    return found[1];
  }

  protected registerParameter(name: string, t: Tensor): Tensor {
    t.requireGrad();
    this.params.set(name, t);
    return t;
  }

  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, m: M): M {
    this.children.set(name, m);
    return m;
  }

  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.children) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }

  namedParameters(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) for (const [n, p] of m.params) out.push([prefix ? `${prefix}.${n}` : n, p]);
    return out;
  }

  namedBuffers(): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [prefix, m] of this.namedModules()) for (const [n, b] of m.buffers) out.push([prefix ? `${prefix}.${n}` : n, b]);
    return out;
  }

  parameters(): Tensor[] { return this.namedParameters().map(([, p]) => p); }

  train(mode = true): this {
    for (const [, m] of this.namedModules()) m.training = mode;
    return this;
  }

  eval(): this { return this.train(false); }

  zeroGrad(): void { for (const p of this.parameters()) p.grad = null; }

  /** Parameters and buffers by dotted name (the tensors themselves, not copies). */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values into parameters and buffers by name (converted to each tensor's dtype).
   * Strict by default: missing or unexpected names and shape mismatches are errors.
   */
  loadStateDict(values: Map<string, { shape: readonly number[]; data: ArrayLike<number> }>, strict = true): void {
    const own = this.stateDict();
    if (strict) {
      const missing = [...own.keys()].filter((k) => !values.has(k));
      const unexpected = [...values.keys()].filter((k) => !own.has(k));
      if (missing.length || unexpected.length) {
        throw new Error(`loadStateDict: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`);
      }
    }
    for (const [name, t] of own) {
      const v = values.get(name);
      if (!v) continue;
      if (v.shape.join() !== t.shape.join()) throw new Error(`loadStateDict: '${name}' has shape ${shapeStr(v.shape)}, the model expects ${shapeStr(t.shape)}`);
      t.storage.set(v.data);
    }
  }

  /** The number of trainable values. */
  parameterCount(): number { return this.parameters().reduce((a, p) => a + p.size, 0); }
}
