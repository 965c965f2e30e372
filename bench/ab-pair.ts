/**
 * Paired A/B of two checkouts of this repository in one process: both engines are loaded side by
 * side and the workloads' training / inference steps alternate A, B, B, A, … so that both see the
 * same background load (on a shared 2-core machine, back-to-back runs of the two differ more from
 * the load than from the change). Prints, per workload, the fastest and median step of each and
 * the median of the per-pair ratios A/B (> 1: B is faster). Workloads as bench/run.ts (batch 200).
 *
 *   npx tsx bench/ab-pair.ts <threads> <checkoutA> <checkoutB> [net/workload,…]
 */
const [threads, dirA, dirB, only] = [Number(process.argv[2]), process.argv[3]!, process.argv[4]!, process.argv[5]];
async function load(root: string) {
  const ag = await import(`${root}/src/autograd/index.ts`);
  const cr = await import(`${root}/src/tensor/creation.ts`);
  const be = await import(`${root}/src/tensor/backends.ts`);
  const nn = await import(`${root}/src/nn/index.ts`);
  const nets = await import(`${root}/src/svdd/networks.ts`);
  const t = await import(`${root}/src/tensor/tensor.ts`);
  await be.useBackend('wasm', threads);
  return { ag, cr, be, nn, nets, t };
}
const A = await load(dirA), B = await load(dirB);
const batch = 200;
type L = typeof A;
function makeStep(M: L, net: string, wl: string): () => void {
  const { ag, cr, nn, nets, t } = M;
  const name = net === 'mnist' ? 'mnist_LeNet' : 'cifar10_LeNet';
  const shape = net === 'mnist' ? [1, 28, 28] : [3, 32, 32];
  const rng = new cr.Rng('bench-epoch');
  const x = cr.randUniform([batch, ...shape], 0, 1, rng);
  if (wl === 'infer') { const enc = nets.buildEncoder(name); enc.eval(); return () => { t.withTemporaryStorage(() => ag.noGrad(() => enc.forward(x))); }; }
  const model = wl === 'ae_epoch' ? nets.buildAutoencoder(name) : nets.buildEncoder(name);
  const opt = new nn.Adam(model.parameters(), { lr: 1e-4, weightDecay: 0.5e-6 });
  const c = cr.randNormal([model.repDim], 0, 0.5, rng);
  return () => {
    opt.zeroGrad(); const o = model.forward(x);
    const loss = wl === 'ae_epoch' ? ag.mean(ag.sum(ag.reshape(ag.square(ag.sub(o, x)), [batch, -1]), 1)) : ag.mean(ag.sum(ag.square(ag.sub(o, c)), 1));
    ag.backward(loss); opt.step(); ag.releaseGraph(loss);
  };
}
const median = (xs: number[]) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]!; };
const plan: [string, string, number][] = [['cifar', 'svdd_epoch', 10], ['cifar', 'infer', 24], ['cifar', 'ae_epoch', 6], ['mnist', 'infer', 80], ['mnist', 'svdd_epoch', 40], ['mnist', 'ae_epoch', 30]];
for (const [net, wl, steps] of plan) {
  if (only && !only.split(',').includes(`${net}/${wl}`)) continue;
  const sa = makeStep(A, net, wl), sb = makeStep(B, net, wl);
  sa(); sb(); sa(); sb();
  const ta: number[] = [], tb: number[] = [], ratio: number[] = [];
  for (let i = 0; i < steps; i++) {
    const first = i % 2 === 0;
    const run = (s: () => void) => { const t0 = performance.now(); s(); return performance.now() - t0; };
    let a, b;
    if (first) { a = run(sa); b = run(sb); } else { b = run(sb); a = run(sa); }
    ta.push(a); tb.push(b); ratio.push(a / b);
  }
  console.log(`${net}/${wl} ${threads}T  A min ${Math.min(...ta).toFixed(2)} med ${median(ta).toFixed(2)} | B min ${Math.min(...tb).toFixed(2)} med ${median(tb).toFixed(2)} ms | speedup A/B: median of pairs ${median(ratio).toFixed(3)}, min/min ${(Math.min(...ta) / Math.min(...tb)).toFixed(3)}`);
}
await A.be.shutdownBackends(); await B.be.shutdownBackends();
