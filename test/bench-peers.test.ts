/** bench/peers.ts: the benchmark's best-vs-best ratio and its sanity check of the PyTorch peer against recorded history. */
import { expect } from 'chai';
import { bestRatios, formatBestRatios, loadPeerHistory, peerReference, peerWarning } from '../bench/peers.ts';

describe('benchmark peer figures', () => {
  const history = loadPeerHistory();

  it('the recorded history has every workload at 1 and 2 threads, each figure with a source', () => {
    for (const net of ['mnist', 'cifar']) for (const w of ['ae_epoch', 'svdd_epoch', 'infer']) for (const t of [1, 2]) {
      expect(peerReference(history, `${net}/${w}/${t}`), `${net}/${w}/${t}`).to.not.equal(null);
    }
    for (const r of history.runs) expect(r.source.length).to.be.greaterThan(10);
  });

  it('warns on the CIFAR-10 autoencoder figure of 21 images/s, not on the ~170 it usually is', () => {
    // The excluded record of that run does not pull the reference down.
    expect(peerReference(history, 'cifar/ae_epoch/1')!.median).to.be.within(170, 180);
    expect(peerWarning(history, 'cifar/ae_epoch/1', 21)).to.match(/WARNING: PyTorch cifar ae_epoch at 1 thread: 21 images\/s is 8\.\d× below/);
    expect(peerWarning(history, 'cifar/ae_epoch/1', 160)).to.equal(null);
    expect(peerWarning(history, 'mnist/infer/2', 15000)).to.equal(null);
    expect(peerWarning(history, 'mnist/infer/2', 60000)).to.match(/above/);
    expect(peerWarning(history, 'no/such/1', 1)).to.equal(null);
  });

  it('compares our best thread count with PyTorch\'s best thread count, per backend and workload', () => {
    const rows = [
      { net: 'cifar', workload: 'svdd_epoch', backend: 'wasm', threads: 1, imagesPerS: 468, torch1: 449, torch2: 787 },
      { net: 'cifar', workload: 'svdd_epoch', backend: 'wasm', threads: 2, imagesPerS: 713, torch1: 449, torch2: 787 },
      { net: 'cifar', workload: 'ae_epoch', backend: 'wasm', threads: 1, imagesPerS: 229, torch1: 21, torch2: 19 },
      { net: 'cifar', workload: 'ae_epoch', backend: 'wasm', threads: 2, imagesPerS: 305, torch1: 21, torch2: 19 },
      { net: 'mnist', workload: 'infer', backend: 'wasm', threads: 2, imagesPerS: 32235 },
    ];
    const [svdd, ae, infer] = bestRatios(rows, history);
    expect(svdd).to.include({ ours: 713, oursThreads: 2, torch: 787, torchThreads: 2 });
    expect(svdd!.ratio).to.be.closeTo(713 / 787, 1e-12);
    expect(svdd!.suspect).to.equal(undefined);
    expect(ae).to.include({ ours: 305, torch: 21, torchThreads: 1, suspect: true });
    expect(infer!.torch).to.equal(undefined);
    const table = formatBestRatios([svdd!, ae!, infer!]);
    expect(table).to.contain('0.91×').and.to.contain('(peer figure suspect, see warning)').and.to.contain('n/a');
  });
});
