/**
 * The wire protocol between the synchronous main thread (bridge.ts) and the gpu.js worker
 * (worker.ts). One request is in flight at a time:
 *
 *   1. main lays every typed-array argument out in the data SharedArrayBuffer (16-byte aligned
 *      slots; a new, larger buffer replaces it when the operands do not fit and travels with
 *      the request), copies them in, and posts a `CallRequest` with a fresh sequence number;
 *   2. main blocks in `Atomics.wait` on ctl[DONE];
 *   3. the worker rebuilds the arguments as views of the buffer, awaits the kernel (every gpu.js
 *      call awaited, so WebGPU's Promises and the synchronous modes run the same code), writes
 *      ctl[STATUS], on failure posts the error text on the reply port, then stores the sequence
 *      number in ctl[DONE] and notifies;
 *   4. main wakes, takes the error text with `receiveMessageOnPort` (synchronous) and throws, or
 *      copies the outputs back.
 * ctl[ALIVE] drops to 0 when the worker thread ends, so a dead worker fails the call instead of
 * hanging it.
 */
import type { MessagePort } from 'node:worker_threads';
import type { ConvGeom } from '../types.ts';
import type { EngineOptions } from './ops.ts';
import type { GpujsKernelName } from './plan.ts';

/** Int32 indices of the control block. */
export const CTL = { DONE: 0, STATUS: 1, ALIVE: 2, RESULT: 3 } as const;
export const CTL_INTS = 8;
export const STATUS_OK = 0;
export const STATUS_ERROR = 1;

/** A typed-array argument: a view of the data buffer. Offsets are in bytes. */
export interface ArraySlot { t: 'f32' | 'i32'; off: number; len: number }
/** Any other argument travels by value (structured clone). */
export interface ValueSlot { t: 'v'; v: number | boolean | string | ConvGeom }
export type WireArg = ArraySlot | ValueSlot;

export interface CallRequest { kind: 'call'; seq: number; name: GpujsKernelName; args: WireArg[]; data?: SharedArrayBuffer }
/** Answered in ctl[RESULT]: the number of kernels the worker's engine has compiled. */
export interface StatsRequest { kind: 'stats'; seq: number }
export interface ShutdownRequest { kind: 'shutdown' }
/** Tests only: the worker exits without answering, as a crashed worker would. */
export interface ExitRequest { kind: 'exit'; seq: number }
export type Request = CallRequest | StatsRequest | ShutdownRequest | ExitRequest;

export interface WorkerInit {
  mode: string;
  engine: EngineOptions;
  /** Folder whose node_modules holds `webgpu` (webgpu mode only). */
  webgpuDir?: string;
  ctl: SharedArrayBuffer;
  data: SharedArrayBuffer;
  /** Where the worker posts error texts; main reads them synchronously with receiveMessageOnPort. */
  reply: MessagePort;
}

/** The worker's first message: ready in the mode gpu.js resolved to, or why it could not start. */
export type ReadyMessage = { ready: true; mode: string } | { ready: false; error: string };
