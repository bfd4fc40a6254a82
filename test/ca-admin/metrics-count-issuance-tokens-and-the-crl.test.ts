// `meshward ca serve --admin` on PostgreSQL, scraped the way Prometheus does: an issuance with a bootstrap
// token counts as issued (method token, code OK) with a Sign latency sample and a redeemed token; the same
// token again counts as refused (UNAUTHENTICATED) and as a refused token; a CSR for another identity is
// refused without touching the token counters; `cert revoke` run by another process moves the CRL number
// gauge (read from the store, so every replica reports the CRL the others wrote). Wrong method and path
// on the admin port get 405 and 404.
import { before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { CaClient } from '../../src/agent/client.js';
import { TD, csrFor, trySign } from '../ca-service/harness.js';
import { waitFor } from '../support/poll.js';
import { runCli } from '../support/cli.js';
import { metricValue } from '../support/sidecar.js';
import { usePostgres } from '../support/postgres.js';
import { useCa } from '../support/ca-fixture.js';

const ID = `spiffe://${TD}/ns/shop/sa/orders`;

describe('ca serve --admin /metrics on PostgreSQL', () => {
  const pg = usePostgres();
  const ca = useCa({ postgres: pg, processes: { args: ['--admin', '127.0.0.1:0'] } });
  let client: CaClient;
  before(() => {
    client = ca.client();
  });

  const scrape = async (): Promise<string> => {
    const res = await fetch(`http://127.0.0.1:${ca.serve.adminPort}/metrics`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
    return res.text();
  };

  it('counts issued and refused Sign calls, redeemed and refused tokens, and follows the CRL number', async () => {
    const before = await scrape();
    assert.equal(metricValue(before, 'meshward_ca_sign_requests_total', { result: 'issued' }), 0);
    const crlBefore = metricValue(before, 'meshward_ca_crl_number');
    assert.ok(crlBefore >= 1, 'ca init wrote a CRL, and the gauge reads it from the store');
    assert.ok(metricValue(before, 'meshward_ca_crl_next_update_seconds') > Date.now() / 1000, 'the CRL is current');
    assert.ok(metricValue(before, 'process_cpu_user_seconds_total') > 0, 'process metrics are exported too');

    const token = (await runCli(['token', 'create', '--ca-dir', ca.dir, '--store', ca.dsn, '--spiffe-id', ID])).stdout.trim();
    const issued = await trySign(client, { csr: csrFor(ID).csr, token, ttlSeconds: 600 });
    assert.ok(issued.ok, JSON.stringify(issued));
    const again = await trySign(client, { csr: csrFor(ID).csr, token, ttlSeconds: 600 });
    assert.equal(again.ok, false);
    assert.equal(!again.ok && again.code, grpc.status.UNAUTHENTICATED);
    // A valid token with a CSR for someone else: refused with PERMISSION_DENIED, the token stays unused.
    const other = (await runCli(['token', 'create', '--ca-dir', ca.dir, '--store', ca.dsn, '--spiffe-id', ID])).stdout.trim();
    const mismatch = await trySign(client, { csr: csrFor(`spiffe://${TD}/ns/shop/sa/billing`).csr, token: other, ttlSeconds: 600 });
    assert.equal(!mismatch.ok && mismatch.code, grpc.status.PERMISSION_DENIED);

    const after = await scrape();
    assert.equal(metricValue(after, 'meshward_ca_sign_requests_total', { method: 'token', result: 'issued', code: 'OK' }), 1);
    assert.equal(metricValue(after, 'meshward_ca_sign_requests_total', { method: 'token', result: 'refused', code: 'UNAUTHENTICATED' }), 1);
    assert.equal(metricValue(after, 'meshward_ca_sign_requests_total', { method: 'token', result: 'refused', code: 'PERMISSION_DENIED' }), 1);
    assert.equal(metricValue(after, 'meshward_ca_sign_duration_seconds_count', { result: 'issued' }), 1);
    assert.equal(metricValue(after, 'meshward_ca_sign_duration_seconds_count', { result: 'refused' }), 2);
    assert.ok(metricValue(after, 'meshward_ca_sign_duration_seconds_sum', { result: 'issued' }) > 0);
    assert.equal(metricValue(after, 'meshward_ca_bootstrap_tokens_total', { result: 'redeemed' }), 1);
    assert.equal(metricValue(after, 'meshward_ca_bootstrap_tokens_total', { result: 'refused' }), 1);
    assert.equal(metricValue(after, 'meshward_ca_store_errors_total', { operation: 'sign' }), 0);

    // A revocation by another process writes a new CRL in the store: the gauge follows at the next scrape.
    const revoked = await runCli(['cert', 'revoke', '--ca-dir', ca.dir, '--store', ca.dsn, '--serial', issued.ok ? issued.res.serial : '']);
    assert.equal(revoked.code, 0, revoked.stderr);
    await waitFor('a higher CRL number in /metrics', async () => (metricValue(await scrape(), 'meshward_ca_crl_number') > crlBefore ? true : undefined), { timeoutMs: 30_000 });
  });

  it('answers 405 to other methods and 404 to other paths', async () => {
    const post = await fetch(`http://127.0.0.1:${ca.serve.adminPort}/metrics`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
    assert.equal(post.status, 405);
    const missing = await fetch(`http://127.0.0.1:${ca.serve.adminPort}/debug`, { signal: AbortSignal.timeout(10_000) });
    assert.equal(missing.status, 404);
    assert.match(await missing.text(), /\/healthz, \/readyz or \/metrics/);
  });
});
