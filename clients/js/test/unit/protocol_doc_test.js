// docs/PROTOCOL.md is the spec: its close-code table (7.3) and the client's
// CLOSE_POLICY must say the same, and every close code the gateway sends (§5)
// must have a decision.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { CLOSE_POLICY, closeAction } from '../../src/client.js';

const doc = readFileSync(new URL('../../../../docs/PROTOCOL.md', import.meta.url), 'utf8');

// The rows of the first table after `heading` whose header includes `column`,
// as arrays of cells.
function table(heading, column) {
  const start = doc.indexOf(heading);
  assert.ok(start >= 0, `docs/PROTOCOL.md has no "${heading}"`);
  const lines = doc.slice(start).split('\n');
  const head = lines.findIndex((l) => l.startsWith('|') && l.includes(column));
  assert.ok(head >= 0, `no table with a "${column}" column after "${heading}"`);
  const rows = [];
  for (const l of lines.slice(head + 2)) {
    if (!l.startsWith('|')) break;
    rows.push(l.split('|').slice(1, -1).map((c) => c.trim()));
  }
  return rows;
}

test('the close-code table of docs/PROTOCOL.md 7.3 is the client policy', () => {
  const rows = table('### 7.3 The close-code policy', 'client action');
  const fromDoc = {};
  let other = null;
  for (const [code, action] of rows) {
    const a = /^`([a-z-]+)`$/.exec(action);
    assert.ok(a, `row ${code}: action "${action}" is not one backquoted word`);
    if (code === 'other') other = a[1];
    else fromDoc[code] = a[1];
  }
  assert.deepEqual(fromDoc, Object.fromEntries(Object.entries(CLOSE_POLICY)));
  assert.equal(other, 'backoff');
  assert.equal(closeAction(4998), other);
});

test('every close code of §5 has a decision in the client table', () => {
  const codes = table('## 5. Close codes', 'sent when').map((r) => r[0]);
  assert.ok(codes.length > 10, 'found the §5 table');
  for (const code of codes) assert.ok(code in CLOSE_POLICY, `close code ${code} (§5) is missing from 7.3 and the client`);
});

test('every action of the policy is defined in 7.3', () => {
  const actions = table('### 7.3 The close-code policy', 'meaning').map((r) => r[0].replaceAll('`', ''));
  for (const a of new Set(Object.values(CLOSE_POLICY))) assert.ok(actions.includes(a), `action ${a} undefined`);
});
