// The hand-written declarations compile against a usage file (tsc --noEmit).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

test('src/*.d.ts type-check test/types/usage.ts', () => {
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
  const dir = fileURLToPath(new URL('../types/', import.meta.url));
  const r = spawnSync(process.execPath, [tsc, '-p', dir], { encoding: 'utf8', timeout: 120000 });
  assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
});
