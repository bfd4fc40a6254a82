// What `meshward inject` refuses: one line on stderr naming the file, the document and the field, a
// non-zero exit, and nothing on stdout (not the documents before the bad one either), so
// `meshward inject -f app.yaml | kubectl apply -f -` applies nothing half-done.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runCli } from '../support/cli.js';
import { OTHERS, WORKLOADS, inject } from './workloads.js';

const GOOD = `${OTHERS}---\n${WORKLOADS.Deployment}---\n`;

const REFUSALS: { name: string; input?: string; args?: string[]; code: number; stderr: RegExp }[] = [
  { name: 'malformed YAML after good documents', input: `${GOOD}kind: Deployment\nspec: [\n`, code: 1, stderr: /^meshward: error: <stdin>: line \d+, column \d+: .*\(document 4; nothing was printed\)$/ },
  { name: 'a duplicate key', input: `${GOOD}apiVersion: v1\nkind: Pod\nkind: Pod\n`, code: 1, stderr: /<stdin>: line \d+, column \d+: Map keys must be unique/ },
  { name: 'tabs for indentation', input: `${GOOD}apiVersion: v1\nkind: Pod\nspec:\n\tcontainers: []\n`, code: 1, stderr: /<stdin>: line \d+, column 1: Tabs are not allowed as indentation \(document 4; nothing was printed\)$/ },
  { name: 'an alias bomb', input: `${GOOD}a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n`, code: 1, stderr: /<stdin>: document 4: .*alias/i },
  { name: 'a Deployment without containers', input: WORKLOADS.Deployment!.replace(/containers:[\s\S]*$/, 'containers: []\n'), code: 1, stderr: /<stdin>: document 1 \(Deployment orders\): spec\.template\.spec\.containers: must be a non-empty list of containers$/ },
  { name: 'a Deployment without a template', input: 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: bare}\nspec: {replicas: 1}\n', code: 1, stderr: /<stdin>: document 1 \(Deployment bare\): spec\.template: must be a pod template$/ },
  { name: 'an app container named like the sidecar', input: WORKLOADS.Pod!.replace('- name: app', '- name: meshward'), code: 1, stderr: /\(Pod debug\): spec\.containers: a container is already named "meshward", the sidecar's name: rename it$/ },
  { name: 'no trust domain to generate a config with', input: GOOD, args: [], code: 2, stderr: /\(Deployment orders\): --trust-domain is needed to generate the sidecar's ConfigMap \(or name an existing one with --config-map\)$/ },
  { name: 'no port to send the app traffic to', input: WORKLOADS.Pod!.replace(/ports:\s*- containerPort: 8080/, 'args: [serve]'), code: 2, stderr: /\(Pod debug\): the first container declares no containerPort: pass --app-port/ },
  { name: 'a CA address without a port', input: GOOD, args: ['--trust-domain', 'example.org', '--ca', 'meshward-ca'], code: 2, stderr: /--ca "meshward-ca" must be HOST:PORT/ },
  { name: 'a trust domain that is not one', input: GOOD, args: ['--trust-domain', 'Example.org/x'], code: 2, stderr: /--trust-domain "Example\.org\/x" is not a trust domain/ },
  { name: 'an app port out of range', input: GOOD, args: ['--trust-domain', 'example.org', '--app-port', '70000'], code: 2, stderr: /--app-port must be a port number/ },
];

for (const r of REFUSALS) {
  test(`inject refuses ${r.name}: one line, exit ${r.code}, nothing printed`, async () => {
    const result = await inject(r.input ?? GOOD, r.args ?? ['--trust-domain', 'example.org']);
    assert.equal(result.code, r.code, result.stderr);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr.trimEnd().split('\n').length, 1, result.stderr);
    assert.match(result.stderr.trimEnd(), r.stderr);
  });
}

test('inject refuses a file that does not exist, and a missing -f', async () => {
  const missing = await runCli(['inject', '-f', '/nonexistent/app.yaml', '--trust-domain', 'example.org']);
  assert.equal(missing.code, 1);
  assert.equal(missing.stdout, '');
  assert.match(missing.stderr, /^meshward: error: -f \/nonexistent\/app\.yaml does not exist\n$/);
  const usage = await runCli(['inject', '--trust-domain', 'example.org']);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /Missing required argument: filename/);
});
