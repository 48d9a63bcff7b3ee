// The size budget: the core client <= 6 KB minified + gzipped (terser, gzip
// -9); the shared-connection entry point has its own line. Prints both.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { minify } from 'terser';

const BUDGET = { 'src/client.js': 6 * 1024, 'src/shared.js': 3 * 1024 };

for (const [file, budget] of Object.entries(BUDGET)) {
  test(`${file} fits ${budget} bytes minified + gzipped`, async () => {
    const src = readFileSync(new URL('../../' + file, import.meta.url), 'utf8');
    const min = await minify(src, { module: true, compress: { passes: 2 } });
    const gz = gzipSync(min.code, { level: 9 }).length;
    console.log(`size: ${file}: ${src.length} B source, ${min.code.length} B minified, ${gz} B minified+gzipped (budget ${budget} B)`);
    assert.ok(gz <= budget, `${file}: ${gz} B minified+gzipped, over the budget of ${budget} B`);
  });
}
