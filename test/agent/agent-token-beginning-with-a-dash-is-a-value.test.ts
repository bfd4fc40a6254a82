// A bootstrap token is base64url, and one in 64 used to begin with "-": `meshward agent --once --token -hX…`
// was then read by the command-line parser as flags, printed the help and exited 0 with no certificate (an
// init container that "succeeded" and a pod that then failed). Found as a rare failure of the "--once" test
// in test/agent/agent.test.ts. New tokens never begin with "-" (src/ca/tokens.ts); one made by an older meshward
// is still bound to --token as its value (src/cli/main.ts).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { newTokenText, TOKEN_LENGTH, tokenHash } from '../../src/ca/tokens.js';
import { SqliteStore } from '../../src/ca/store/sqlite.js';
import { bindDashedTokens } from '../../src/cli/main.js';
import { parseCertificate } from '../../src/pki/certificate.js';
import { decodePem } from '../../src/pki/pem.js';
import { useCa } from '../support/ca-fixture.js';
import { runCli } from '../support/cli.js';

const ID = 'spiffe://example.org/ns/default/sa/dash';
/** The shape that printed the help: "-h" and then 41 more base64url characters. */
const DASHED = `-h${'A_-b'.repeat(11)}`.slice(0, TOKEN_LENGTH);

describe('a bootstrap token that begins with "-"', () => {
  const ca = useCa({
    inProcess: {},
    // Stored by hash as `token create` would have stored it, only with the text an older meshward could draw.
    prepare: async ({ dir }) => {
      const store = SqliteStore.open(join(dir, 'ca.db'));
      try {
        await store.createToken(tokenHash(DASHED), ID, new Date(Date.now() + 600_000), new Date());
      } finally {
        await store.close();
      }
    },
  });

  it('is never drawn any more', () => {
    for (let i = 0; i < 5000; i++) {
      const token = newTokenText();
      assert.equal(token.length, TOKEN_LENGTH);
      assert.ok(!token.startsWith('-'), token);
    }
  });

  it('is bound to --token as its value, and nothing else is rewritten', () => {
    assert.deepEqual(bindDashedTokens(['agent', '--token', DASHED, '--once']), ['agent', `--token=${DASHED}`, '--once']);
    // Not a token's shape: left for the parser, which reports the missing value as a usage error.
    assert.deepEqual(bindDashedTokens(['agent', '--token', '--once']), ['agent', '--token', '--once']);
    assert.deepEqual(bindDashedTokens(['agent', '--token', '-h']), ['agent', '--token', '-h']);
    assert.deepEqual(bindDashedTokens(['agent', '--token', 'abc']), ['agent', '--token', 'abc']);
    assert.deepEqual(bindDashedTokens(['agent', '--token']), ['agent', '--token']);
  });

  it('bootstraps `meshward agent --once` with it, exit 0 only with the certificate written', async () => {
    const out = join(ca.root, 'dashed');
    const r = await runCli(['agent', '--ca', `127.0.0.1:${ca.server.port}`, '--bundle', join(ca.dir, 'bundle.crt'), '--out', out, '--spiffe-id', ID, '--once', '--token', DASHED]);
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /Options:/, 'the help was printed instead of running the agent');
    assert.deepEqual(parseCertificate(decodePem(readFileSync(join(out, 'tls.crt')))[0]!.der).uris, [ID]);
  });
});
