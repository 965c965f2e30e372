/**
 * A narrow, typed view of the parts of gpu.js 2.24.1 this backend uses. gpu.js ships loose
 * typings (`any` in many places) and is CommonJS, so it is loaded through `createRequire` and
 * everything crossing into it goes through these interfaces.
 */
import { createRequire } from 'node:module';

/** The gpu.js modes a backend can be created in ('gpu' = best GL backend gpu.js finds, else webasm). */
export type GpujsMode = 'gpu' | 'webgl' | 'webgl2' | 'headlessgl' | 'webgpu' | 'webasm' | 'cpu';

/** An opaque value living on the device (a GL texture or a WebGPU buffer result), or host arrays in cpu mode. */
export interface DeviceValue { readonly __gpujsDeviceValue?: never }
/** gpu.js `Input`: a flat typed array with logical dimensions [w, h?, d?]. */
export interface GpuInput { readonly value: Float32Array; readonly size: number[] }

export type KernelArg = number | Float32Array | GpuInput | DeviceValue;
/** What a kernel returns: 1-, 2- or 3-D nested float arrays, a device value (pipeline), or a Promise of either (webgpu). */
export type KernelResult = Float32Array | Float32Array[] | Float32Array[][] | DeviceValue | Promise<unknown>;

export interface KernelFn {
  (...args: KernelArg[]): KernelResult;
  destroy?(removeCanvasReferences?: boolean): unknown;
}

export interface KernelSettings {
  output: number[];
  constants?: Record<string, number>;
  pipeline?: boolean;
  precision?: 'single' | 'unsigned';
  tactic?: 'speed' | 'balanced' | 'precision';
  immutable?: boolean;
  loopMaxIterations?: number;
}

export interface GpuInstance {
  /** The mode asked for ('gpu' means: the best GL backend found, else webasm). */
  readonly mode: string;
  /** The kernel class gpu.js settled on when it was created (its name tells the mode that runs). */
  readonly Kernel?: { readonly name: string } | null;
  createKernel(source: string, settings: KernelSettings): KernelFn;
  destroy(): unknown;
}

interface GpuConstructor {
  new (settings: { mode?: string }): GpuInstance;
  readonly isHeadlessGLSupported: boolean;
  readonly isWebGPUSupported: boolean;
}

export interface GpujsModule {
  GPU: GpuConstructor;
  input(value: Float32Array, size: number[]): GpuInput;
}

/** The loaded gpu.js module: a module cache, process-wide like require's. */
let cached: GpujsModule | undefined;

/** Loads gpu.js (CommonJS) once. */
export function loadGpujs(): GpujsModule {
  if (!cached) {
    const require = createRequire(import.meta.url);
    cached = require('gpu.js') as GpujsModule;
  }
  return cached;
}

export function isPromise(v: unknown): v is Promise<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}
