// docs/metrics.md lists every meshward_ca_* series a real `meshward ca serve --admin` exports, with its labels
// and their values: the CA runs as a child process, Sign calls that move the labels are made (a token
// issuance, the same token again, a call without a credential), /metrics is scraped, and every family,
// label name and label value seen must appear in the page's section for that series.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { TD, csrFor, trySign } from '../ca-service/harness.js';
import { runCli } from '../support/cli.js';
import { METRICS_PAGE, omissions, parseExposition } from '../support/metrics-page.js';
import { useCa } from '../support/ca-fixture.js';

const ID = `spiffe://${TD}/ns/shop/sa/orders`;
const ca = useCa({
  processes: { args: ['--admin', '127.0.0.1:0'] },
  serving: async ({ dir, client: newClient }) => {
    const client = newClient();
    const token = (await runCli(['token', 'create', '--ca-dir', dir, '--spiffe-id', ID])).stdout.trim();
    assert.ok((await trySign(client, { csr: csrFor(ID).csr, token, ttlSeconds: 600 })).ok);
    assert.equal((await trySign(client, { csr: csrFor(ID).csr, token, ttlSeconds: 600 })).ok, false);
    assert.equal((await trySign(client, { csr: csrFor(ID).csr, ttlSeconds: 600 })).ok, false);
  },
});

test('docs/metrics.md names every meshward_ca_* series, label and label value that ca serve exports', async () => {
  const res = await fetch(`http://127.0.0.1:${ca.serve.adminPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
  const scraped = parseExposition(await res.text());
  for (const family of ['meshward_ca_sign_requests_total', 'meshward_ca_sign_duration_seconds', 'meshward_ca_bootstrap_tokens_total', 'meshward_ca_store_errors_total', 'meshward_ca_crl_number', 'meshward_ca_crl_next_update_seconds']) {
    assert.ok(scraped.has(family), `${family} is exported (scraped: ${[...scraped.keys()].join(', ')})`);
  }
  assert.deepEqual([...(scraped.get('meshward_ca_sign_requests_total')!.get('method') ?? [])].sort(), ['none', 'token'], 'the calls above moved method');
  const missing = omissions(readFileSync(METRICS_PAGE, 'utf8'), scraped);
  if (missing.length > 0) assert.fail(`docs/metrics.md does not cover what ca serve's /metrics exports:\n  ${missing.join('\n  ')}`);
});
