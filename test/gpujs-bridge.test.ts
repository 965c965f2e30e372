/** The gpujs worker bridge's request numbering (bridge.ts, bridge-protocol.ts). */
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';

describe('gpujs worker bridge: request numbers', function () {
  this.timeout(120000);

  it('keeps answering when the request number passes 2^31 − 1 (a long study in one process)', () => {
    // Request numbers travel as int32 (ctl[DONE]); past 2^31 − 1 the worker's answer would read as a
    // negative number and never equal the request's, and the main thread would wait forever: hence a
    // child process with a time limit. Requests straddle the wrap from 2^31 − 3.
    const script = `
      import { GpujsWorkerBridge } from './src/tensor/kernels/gpujs/bridge.ts';
      const bridge = await GpujsWorkerBridge.start({ mode: 'cpu' });
      bridge.seq = 2 ** 31 - 3;
      for (let i = 0; i < 5; i++) {
        const y = new Float32Array(2);
        bridge.call('unary', ['neg', new Float32Array([1, -2]), y, 0]);
        if (y[0] !== -1 || y[1] !== 2) throw new Error('request ' + i + ' gave ' + y);
      }
      await bridge.dispose();
      console.log('ok');`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60000 });
    expect(r.stdout.trim() + r.stderr, r.error ? String(r.error) : '').to.equal('ok');
  });
});
