/**
 * The fuzz suite of the readers of outside bytes (issue 11): a fast fixed-seed corpus here, in
 * `npm test`; `npm run fuzz` runs the same campaigns far longer with a fresh seed (printed, and
 * replayable with SVDD_FUZZ_SEED). See test/fuzz/readers.ts for the properties.
 */
import { rmSync } from 'node:fs';
import { campaigns, fuzzDir, LONG, reasons, runCampaign, summary } from './fuzz/readers.ts';

describe('fuzz: readers of outside bytes (fast-check)', function () {
  this.timeout(LONG ? 0 : 60_000);
  for (const c of campaigns) it(`${c.target} (${c.kind})`, () => { runCampaign(c); });
  after(() => {
    if (LONG || process.env.SVDD_FUZZ_REPORT) {
      console.log(`\n${summary()}`);
      if (LONG) console.log(`\nmost frequent rejection reasons:\n${reasons()}`);
    }
    if (fuzzDir()) rmSync(fuzzDir(), { recursive: true, force: true });
  });
});
