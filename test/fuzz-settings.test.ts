/** Fuzz campaigns of model.json, config files and train flags (test/fuzz/settings.ts): fixed seed in npm test, longer with npm run fuzz. */
import { RUNS, settingsCampaigns } from './fuzz/settings.ts';

describe('fuzz: settings readers (model.json, config files, train flags)', function () {
  this.timeout(process.env.SVDD_FUZZ_RUNS ? 0 : 60_000);
  for (const c of settingsCampaigns) it(c.name, () => { c.run(Math.max(RUNS, 200)); });
});
