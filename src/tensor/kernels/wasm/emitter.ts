/**
 * A tiny WebAssembly binary writer: just the sections, value types and instructions our kernels
 * use, so that every byte the backend runs is spelled out in this repository (no blobs, no
 * external assembler). Instructions are emitted in stack order by a `FnBuilder`; operands given
 * as locals or numbers are pushed first, which keeps kernel generators readable.
 */

export enum T { i32 = 0x7f, i64 = 0x7e, f32 = 0x7d, f64 = 0x7c, v128 = 0x7b }

export function uleb(out: number[], v: number): void {
  if (!Number.isInteger(v) || v < 0) throw new Error(`uleb of ${v}`);
  do {
    let byte = v & 0x7f;
    v = Math.floor(v / 128);
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
}

export function sleb(out: number[], v: number): void {
  if (!Number.isInteger(v)) throw new Error(`sleb of ${v}`);
  for (;;) {
    const byte = v & 0x7f;
    v = Math.floor(v / 128);
    // Done when the remaining value is pure sign extension of the byte's top bit.
    if ((v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0)) { out.push(byte); return; }
    out.push(byte | 0x80);
  }
}

function name(out: number[], s: string): void {
  const bytes = new TextEncoder().encode(s);
  uleb(out, bytes.length);
  for (const b of bytes) out.push(b);
}

/** A local variable (parameters are locals too), typed so misuse shows up at generation time. */
export interface Local<K extends T = T> { readonly index: number; readonly type: K }

/** What an instruction operand can be: a local (local.get), an i32 constant, or code that pushes it. */
export type I32 = Local<T.i32> | number | (() => void);
export type V128 = Local<T.v128> | (() => void);
export type F32 = Local<T.f32> | (() => void);

const SIMD = 0xfd;
/** SIMD opcodes (after the 0xfd prefix) that the kernels use. */
export enum Simd {
  load = 0x00, load32Splat = 0x09, store = 0x0b, const_ = 0x0c,
  i8x16Shuffle = 0x0d, i32x4Splat = 0x11, f32x4ExtractLane = 0x1f, f32x4Splat = 0x13,
  i32x4Eq = 0x37, f32x4Eq = 0x41, f32x4Ne = 0x42, f32x4Gt = 0x44,
  v128And = 0x4e, v128Or = 0x50, v128Bitselect = 0x52,
  f32x4Ge = 0x46, f32x4Nearest = 0x6a,
  i32x4Shl = 0xab, i32x4Add = 0xae,
  f32x4Add = 0xe4, f32x4Sub = 0xe5, f32x4Mul = 0xe6, f32x4Div = 0xe7, f32x4Min = 0xe8, f32x4Max = 0xe9,
  i32x4TruncSatF32x4S = 0xf8,
  /** Relaxed SIMD fused (or not, the engine's choice) multiply-add: a·b + c. */
  f32x4RelaxedMadd = 0x105,
}

export class FnBuilder {
  readonly code: number[] = [];
  private readonly locals: T[] = [];
  readonly params: Local[];

  constructor(readonly exportName: string, paramTypes: T[], readonly results: T[] = []) {
    this.params = paramTypes.map((type, index) => ({ index, type }));
    this.paramTypes = paramTypes;
  }
  readonly paramTypes: T[];

  local<K extends T>(type: K): Local<K> {
    this.locals.push(type);
    return { index: this.paramTypes.length + this.locals.length - 1, type };
  }
  param<K extends T>(i: number, type: K): Local<K> {
    const p = this.params[i]!;
    if (p.type !== type) throw new Error(`param ${i} of ${this.exportName} is not of type ${type}`);
    return p as Local<K>;
  }

  private op(...bytes: number[]): this { this.code.push(...bytes); return this; }
  private pushI32(x: I32): void {
    if (typeof x === 'number') { this.code.push(0x41); sleb(this.code, x | 0); } else if (typeof x === 'function') x(); else this.get(x);
  }
  private pushAny(x: Local | (() => void)): void { if (typeof x === 'function') x(); else this.get(x); }

  get(l: Local): this { this.code.push(0x20); uleb(this.code, l.index); return this; }
  set(l: Local, value?: I32 | V128 | F32): this {
    if (value !== undefined) (l.type === T.i32 ? this.pushI32(value as I32) : this.pushAny(value as Local | (() => void)));
    this.code.push(0x21); uleb(this.code, l.index); return this;
  }
  /** l += v (i32). */
  inc(l: Local<T.i32>, v: I32): this { return this.set(l, () => this.i32Add(l, v)); }

  // Structured control. Blocks and loops here never leave values on the stack.
  block(body: () => void): this { this.op(0x02, 0x40); body(); return this.op(0x0b); }
  loop(body: () => void): this { this.op(0x03, 0x40); body(); return this.op(0x0b); }
  if_(cond: I32, then: () => void, otherwise?: () => void): this {
    this.pushI32(cond); this.op(0x04, 0x40); then();
    if (otherwise) { this.op(0x05); otherwise(); }
    return this.op(0x0b);
  }
  /** Branch to the enclosing label `depth` levels out (0 = innermost) when cond is non-zero. */
  /** Calls function `index` of the module with i32 arguments. */
  call(index: number, args: readonly I32[]): this {
    for (const a of args) this.pushI32(a);
    this.code.push(0x10); uleb(this.code, index); return this;
  }
  brIf(depth: number, cond: I32): this { this.pushI32(cond); this.code.push(0x0d); uleb(this.code, depth); return this; }
  br(depth: number): this { this.code.push(0x0c); uleb(this.code, depth); return this; }
  /** `do { body } while (cond)` — the loop label is depth 0 inside body's tail. */
  doWhile(body: () => void, cond: I32): this { return this.loop(() => { body(); this.brIf(0, cond); }); }
  /** `while (cond) { body }` as a block + loop; body may `br(1)` to break. */
  while_(cond: I32, body: () => void): this {
    return this.block(() => this.loop(() => {
      this.brIf(1, () => this.i32Eqz(cond));
      body();
      this.br(0);
    }));
  }

  // i32 arithmetic and comparisons.
  private bin(opcode: number, a: I32, b: I32): this { this.pushI32(a); this.pushI32(b); return this.op(opcode); }
  i32Const(v: number): this { this.pushI32(v); return this; }
  i32Add(a: I32, b: I32): this { return this.bin(0x6a, a, b); }
  i32Sub(a: I32, b: I32): this { return this.bin(0x6b, a, b); }
  i32Mul(a: I32, b: I32): this { return this.bin(0x6c, a, b); }
  i32Shl(a: I32, b: I32): this { return this.bin(0x74, a, b); }
  i32Eq(a: I32, b: I32): this { return this.bin(0x46, a, b); }
  i32Ne(a: I32, b: I32): this { return this.bin(0x47, a, b); }
  i32LtS(a: I32, b: I32): this { return this.bin(0x48, a, b); }
  i32LeS(a: I32, b: I32): this { return this.bin(0x4c, a, b); }
  i32GtS(a: I32, b: I32): this { return this.bin(0x4a, a, b); }
  i32And(a: I32, b: I32): this { return this.bin(0x71, a, b); }
  i32Or(a: I32, b: I32): this { return this.bin(0x72, a, b); }
  i32ShrS(a: I32, b: I32): this { return this.bin(0x75, a, b); }
  i32Eqz(a: I32): this { this.pushI32(a); return this.op(0x45); }
  /** cond ? a : b for i32 (both evaluated). */
  selectI32(a: I32, b: I32, cond: I32): this { this.pushI32(a); this.pushI32(b); this.pushI32(cond); return this.op(0x1b); }
  selectF32(a: F32, b: F32, cond: I32): this { this.pushAny(a); this.pushAny(b); this.pushI32(cond); return this.op(0x1b); }

  // Memory. Addresses are byte addresses; `offset` is the static immediate.
  i32Load(addr: I32, offset = 0): this { this.pushI32(addr); this.op(0x28, 2); uleb(this.code, offset); return this; }
  f32Load(addr: I32, offset = 0): this { this.pushI32(addr); this.op(0x2a, 2); uleb(this.code, offset); return this; }
  f32Store(addr: I32, value: F32, offset = 0): this {
    this.pushI32(addr); this.pushAny(value); this.op(0x38, 2); uleb(this.code, offset); return this;
  }
  f32Const(v: number): this {
    this.code.push(0x43);
    const b = new Uint8Array(new Float32Array([v]).buffer);
    for (const x of b) this.code.push(x);
    return this;
  }
  f32Add(a: F32, b: F32): this { this.pushAny(a); this.pushAny(b); return this.op(0x92); }
  f32Sub(a: F32, b: F32): this { this.pushAny(a); this.pushAny(b); return this.op(0x93); }
  f32Mul(a: F32, b: F32): this { this.pushAny(a); this.pushAny(b); return this.op(0x94); }
  f32Eq(a: F32, b: F32): this { this.pushAny(a); this.pushAny(b); return this.op(0x5b); }
  f32Ne(a: F32, b: F32): this { this.pushAny(a); this.pushAny(b); return this.op(0x5c); }
  f32Gt(a: F32, b: F32): this { this.pushAny(a); this.pushAny(b); return this.op(0x5e); }
  /** The f32 whose bits are the i32 operand (float parameters travel as i32 in command lists). */
  f32FromBits(a: I32): this { this.pushI32(a); return this.op(0xbe); }
  i32Store(addr: I32, value: I32, offset = 0): this {
    this.pushI32(addr); this.pushI32(value); this.op(0x36, 2); uleb(this.code, offset); return this;
  }
  /** memory.copy(dst, src, bytes) — bulk memory, overlapping-safe. */
  memoryCopy(dst: I32, src: I32, bytes: I32): this {
    this.pushI32(dst); this.pushI32(src); this.pushI32(bytes); return this.op(0xfc, 10, 0, 0);
  }
  /** memory.fill(dst, byte, bytes). */
  memoryFill(dst: I32, byte: I32, bytes: I32): this {
    this.pushI32(dst); this.pushI32(byte); this.pushI32(bytes); return this.op(0xfc, 11, 0);
  }

  // SIMD.
  private simd(opcode: Simd): this { this.code.push(SIMD); uleb(this.code, opcode); return this; }
  v128Load(addr: I32, offset = 0): this { this.pushI32(addr); this.simd(Simd.load); this.code.push(0); uleb(this.code, offset); return this; }
  v128Load32Splat(addr: I32, offset = 0): this {
    this.pushI32(addr); this.simd(Simd.load32Splat); this.code.push(2); uleb(this.code, offset); return this;
  }
  v128Store(addr: I32, value: V128, offset = 0): this {
    this.pushI32(addr); this.pushAny(value); this.simd(Simd.store); this.code.push(0); uleb(this.code, offset); return this;
  }
  v128Zero(): this { this.simd(Simd.const_); for (let i = 0; i < 16; i++) this.code.push(0); return this; }
  f32x4Add(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Add); }
  f32x4Mul(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Mul); }
  f32x4Sub(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Sub); }
  f32x4Gt(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Gt); }
  f32x4Eq(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Eq); }
  f32x4Ne(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Ne); }
  f32x4Ge(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Ge); }
  f32x4Div(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Div); }
  f32x4Min(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Min); }
  f32x4Max(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.f32x4Max); }
  /** Round to nearest, ties to even. */
  f32x4Nearest(a: V128): this { this.pushAny(a); return this.simd(Simd.f32x4Nearest); }
  /** f32 lanes to i32 lanes, truncating (saturating; NaN gives 0). */
  i32x4TruncSatF32x4S(a: V128): this { this.pushAny(a); return this.simd(Simd.i32x4TruncSatF32x4S); }
  i32x4Shl(a: V128, bits: I32): this { this.pushAny(a); this.pushI32(bits); return this.simd(Simd.i32x4Shl); }
  v128And(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.v128And); }
  v128Or(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.v128Or); }
  /** Lanes of a where mask bits are set, else of b. */
  v128Bitselect(a: V128, b: V128, mask: V128): this {
    this.pushAny(a); this.pushAny(b); this.pushAny(mask); return this.simd(Simd.v128Bitselect);
  }
  f32x4Splat(a: F32): this { this.pushAny(a); return this.simd(Simd.f32x4Splat); }
  i32x4Splat(a: I32): this { this.pushI32(a); return this.simd(Simd.i32x4Splat); }
  i32x4Add(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.i32x4Add); }
  /** All-ones lanes where a = b (i32 lanes), else zero. */
  i32x4Eq(a: V128, b: V128): this { this.pushAny(a); this.pushAny(b); return this.simd(Simd.i32x4Eq); }
  /** An i32x4 constant. */
  i32x4Const(lanes: [number, number, number, number]): this {
    this.simd(Simd.const_);
    const b = new Uint8Array(new Int32Array(lanes).buffer);
    for (const x of b) this.code.push(x);
    return this;
  }
  /** f32 lanes picked from a (0–3) and b (4–7). */
  f32x4Shuffle(a: V128, b: V128, lanes: [number, number, number, number]): this {
    this.pushAny(a); this.pushAny(b); this.simd(Simd.i8x16Shuffle);
    for (const l of lanes) for (let k = 0; k < 4; k++) this.code.push(l * 4 + k);
    return this;
  }
  f32x4ExtractLane(v: V128, lane: number): this { this.pushAny(v); this.simd(Simd.f32x4ExtractLane); this.code.push(lane); return this; }
  /** a·b + c: relaxed madd when the engine has it, else an exactly rounded mul then add. */
  f32x4Madd(a: V128, b: V128, c: V128, relaxed: boolean): this {
    if (!relaxed) return this.f32x4Add(() => this.f32x4Mul(a, b), c);
    this.pushAny(a); this.pushAny(b); this.pushAny(c);
    return this.simd(Simd.f32x4RelaxedMadd);
  }

  /** The function body as the code section wants it: size, local declarations, code, end. */
  encodeBody(): number[] {
    const body: number[] = [];
    // Run-length encode consecutive locals of the same type.
    const groups: [number, T][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last && last[1] === t) last[0]++; else groups.push([1, t]);
    }
    uleb(body, groups.length);
    for (const [count, t] of groups) { uleb(body, count); body.push(t); }
    body.push(...this.code, 0x0b);
    const out: number[] = [];
    uleb(out, body.length);
    out.push(...body);
    return out;
  }
}

export interface MemoryImport { module: string; field: string; initialPages: number; maximumPages: number; shared: boolean }

/** Builds a module that imports one memory and exports the given functions. */
export function buildModule(memory: MemoryImport, fns: FnBuilder[]): Uint8Array<ArrayBuffer> {
  const out = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];
  const section = (id: number, content: number[]): void => {
    out.push(id);
    uleb(out, content.length);
    out.push(...content);
  };
  // One type per function keeps the writer simple; the engine dedups structurally anyway.
  const types: number[] = [];
  uleb(types, fns.length);
  for (const f of fns) {
    types.push(0x60);
    uleb(types, f.paramTypes.length); types.push(...f.paramTypes);
    uleb(types, f.results.length); types.push(...f.results);
  }
  section(1, types);

  const imports: number[] = [];
  uleb(imports, 1);
  name(imports, memory.module); name(imports, memory.field);
  imports.push(0x02, memory.shared ? 0x03 : 0x01);
  uleb(imports, memory.initialPages); uleb(imports, memory.maximumPages);
  section(2, imports);

  const funcs: number[] = [];
  uleb(funcs, fns.length);
  fns.forEach((_, i) => uleb(funcs, i));
  section(3, funcs);

  const exports: number[] = [];
  uleb(exports, fns.length);
  fns.forEach((f, i) => { name(exports, f.exportName); exports.push(0x00); uleb(exports, i); });
  section(7, exports);

  const code: number[] = [];
  uleb(code, fns.length);
  for (const f of fns) code.push(...f.encodeBody());
  section(10, code);
  return new Uint8Array(out);
}
