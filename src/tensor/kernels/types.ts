/**
 * The kernel interface: every backend implements (a subset of) these functions on flat,
 * contiguous, row-major typed arrays. Autograd ops and nn layers never call a backend
 * directly; they call `kernels()` (see registry.ts), which resolves each kernel by name for
 * the active backend and falls back to the `ts` reference implementation for kernels (or
 * dtypes) a backend does not provide.
 */
export type DType = 'float32' | 'float64';
export type FloatArray = Float32Array | Float64Array;

/** Geometry of a 2-D convolution in NCHW layout with weights [cout, cin, kh, kw]. */
export interface ConvGeom {
  n: number; cin: number; h: number; w: number;
  cout: number; kh: number; kw: number;
  stride: number; pad: number;
  oh: number; ow: number;
}

/** Unary element-wise functions with a parameter (slope for leaky ReLU, alpha for ELU). */
export type UnaryName = 'leakyRelu' | 'elu' | 'sigmoid' | 'relu' | 'exp' | 'log' | 'neg' | 'sqrt' | 'abs' | 'square';

/** Binary element-wise functions (with broadcasting through zero strides). */
export type BinaryName = 'add' | 'sub' | 'mul' | 'div';
export type ReduceName = 'sum' | 'max';

/**
 * The default branch of a switch over a closed union of names: with every case handled, x has
 * type never, so a name added to the union and forgotten in the switch fails the type check.
 */
export function assertNever(x: never, what: string): never {
  throw new Error(`unhandled ${what} '${String(x)}'`);
}

export interface KernelSet {
  /**
   * out[idx] = f(a[idx·aStrides], b[idx·bStrides]) over every index of outShape; a zero stride
   * broadcasts that input along the axis. out is dense row-major.
   */
  binary(name: BinaryName, a: FloatArray, aStrides: number[], b: FloatArray, bStrides: number[],
         out: FloatArray, outShape: number[]): void;
  /** Reduces dense x of `shape` over the axes flagged in `reduce`; out is dense over kept axes. */
  reduce(name: ReduceName, x: FloatArray, shape: number[], reduce: boolean[], out: FloatArray): void;

  /**
   * C[m,n] (+)= op(A) · op(B). A is [m,k] (or [k,m] when transA), B is [k,n] (or [n,k] when
   * transB), all row-major and dense. When accumulate is true C is added to, else overwritten.
   */
  gemm(a: FloatArray, b: FloatArray, c: FloatArray, m: number, n: number, k: number,
       transA: boolean, transB: boolean, accumulate: boolean): void;

  /** y[n,cout,oh,ow] = conv(x[n,cin,h,w], w[cout,cin,kh,kw]) (no bias: added by the op). */
  conv2d(x: FloatArray, w: FloatArray, y: FloatArray, g: ConvGeom): void;
  /** gx[n,cin,h,w] = ∂/∂x of sum(y·gy); overwrites gx. Also the forward of ConvTranspose2d. */
  conv2dGradInput(gy: FloatArray, w: FloatArray, gx: FloatArray, g: ConvGeom): void;
  /** gw[cout,cin,kh,kw] = ∂/∂w of sum(y·gy); overwrites gw. */
  conv2dGradWeight(x: FloatArray, gy: FloatArray, gw: FloatArray, g: ConvGeom): void;

  /** 2x2 / stride-2 max pooling (floor mode); argmax holds the flat input index of each max. */
  maxPool2d(x: FloatArray, y: FloatArray, argmax: Int32Array, n: number, c: number, h: number, w: number, k: number): void;
  /** gx (zeroed by the caller) += scatter of gy at argmax. */
  maxPool2dGrad(gy: FloatArray, argmax: Int32Array, gx: FloatArray): void;
  /**
   * maxPool2d of unary('leakyRelu', x, ·, slope) without storing the activation: y and argmax bit
   * for bit those of the two kernels in turn (the autograd op uses it only on a backend that runs
   * all three kernels itself, so fusing never changes a result).
   */
  leakyMaxPool2d(x: FloatArray, y: FloatArray, argmax: Int32Array, n: number, c: number, h: number, w: number, k: number, slope: number): void;
  /**
   * gx (overwritten) = the input gradient of leakyMaxPool2d at x: bit for bit maxPool2dGrad into a
   * zeroed array followed by unaryGrad('leakyRelu') at x.
   */
  leakyMaxPool2dGrad(gy: FloatArray, argmax: Int32Array, x: FloatArray, gx: FloatArray,
                     n: number, c: number, h: number, w: number, k: number, slope: number): void;
  /**
   * leakyMaxPool2d of channelNormalize(x, mean, invStd) on its [n, c, h·w] view (eval-mode
   * BatchNorm, activation and pooling of inference), storing neither intermediate: bit for bit the
   * kernels in turn.
   */
  normLeakyMaxPool2d(x: FloatArray, mean: FloatArray, invStd: FloatArray, y: FloatArray, argmax: Int32Array,
                     n: number, c: number, h: number, w: number, k: number, slope: number): void;

  /** Nearest-neighbour upsampling by an integer factor, NCHW. */
  upsampleNearest(x: FloatArray, y: FloatArray, nc: number, h: number, w: number, f: number): void;
  upsampleNearestGrad(gy: FloatArray, gx: FloatArray, nc: number, h: number, w: number, f: number): void;

  /** out[i] = f(x[i]; p). */
  unary(name: UnaryName, x: FloatArray, out: FloatArray, p: number): void;
  /** gx[i] = gy[i] · f'(x[i]; p), with y = f(x) given for functions whose derivative uses it. */
  unaryGrad(name: UnaryName, x: FloatArray, y: FloatArray, gy: FloatArray, gx: FloatArray, p: number): void;

  /**
   * Per-channel statistics of x viewed as [outer, c, inner] (NCHW: outer=n, inner=h·w;
   * [n, c] for 1-d: inner=1): mean[c] and biased variance[c].
   */
  channelMoments(x: FloatArray, mean: FloatArray, varB: FloatArray, outer: number, c: number, inner: number): void;
  /** y = (x − mean[c]) · invStd[c] on the [outer, c, inner] view. */
  channelNormalize(x: FloatArray, mean: FloatArray, invStd: FloatArray, y: FloatArray, outer: number, c: number, inner: number): void;
  /**
   * Train-mode BatchNorm (no affine) input gradient given xhat = normalised x:
   * gx = invStd/M · (M·gy − Σgy − xhat·Σ(gy·xhat)), sums per channel, M = outer·inner.
   */
  batchNormGrad(gy: FloatArray, xhat: FloatArray, invStd: FloatArray, gx: FloatArray, outer: number, c: number, inner: number): void;
}

export type KernelName = keyof KernelSet;

/** A backend is a name plus the kernels it implements, per dtype. */
export interface Backend {
  readonly name: string;
  /** How it runs here when the name alone does not say (gpujs: the mode gpu.js resolved to), for logs. */
  readonly detail?: string;
  /** Kernels this backend runs for float32 / float64 data; missing ones fall back to `ts`. */
  readonly kernels: Partial<Record<DType, Partial<KernelSet>>>;
  /**
   * A zeroed array for tensor storage placed in the backend's own memory, or null to let the
   * caller allocate an ordinary one. Such arrays stay valid after the backend changes.
   */
  alloc?(dtype: DType, length: number): FloatArray | null;
  /**
   * Releases what the backend holds (worker threads, device memory); it must not be used
   * afterwards. Storage it placed (alloc) stays readable as host arrays.
   */
  dispose?(): Promise<void>;
}
