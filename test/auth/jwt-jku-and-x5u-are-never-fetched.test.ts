// A token whose header points at a key elsewhere (jku, x5u) is refused without anything being fetched: a
// server on 127.0.0.1 that the headers name sees no request, and fetch() is never called, whether the kid is
// known, unknown or absent.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { generateKeyPairSync } from 'node:crypto';
import { SignJWT } from 'jose';
import { keySetFromJwks } from '../../src/auth/jwks.js';
import { JwtVerifier } from '../../src/auth/jwt.js';
import { AUDIENCE, expectRefused, ISSUER, makeIssuer, NOW, NOW_S, request } from './helpers.js';

describe('jku and x5u are never followed', () => {
  let server: Server;
  let hits = 0;
  let fetches = 0;
  let url = '';
  const realFetch = globalThis.fetch;
  const attacker = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });

  before(async () => {
    server = createServer((req, res) => {
      hits++;
      // What an attacker would serve: a JWKS with their own key.
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [{ ...attacker.publicKey.export({ format: 'jwk' }), kid: 'attacker', alg: 'ES256' }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    globalThis.fetch = ((...args: Parameters<typeof fetch>) => {
      fetches++;
      return realFetch(...args);
    }) as typeof fetch;
  });

  after(async () => {
    globalThis.fetch = realFetch;
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('tokens signed by the attacker, naming the attacker\'s JWKS or certificate URL, are refused and nothing is fetched', async () => {
    const issuer = makeIssuer('ES256', 'real');
    const verifier = new JwtVerifier([{ issuer: ISSUER, audiences: [AUDIENCE], algorithms: ['ES256'] }]);
    verifier.setKeys(ISSUER, keySetFromJwks(issuer.jwks, 'jwks.json'));
    const claims = { iss: ISSUER, aud: AUDIENCE, sub: 'mallory', exp: NOW_S + 600 };
    const headers = [
      { jku: `${url}/jwks.json`, kid: 'attacker' },
      { jku: `${url}/jwks.json`, kid: 'real' },
      { jku: `${url}/jwks.json` },
      { x5u: `${url}/cert.pem`, kid: 'attacker' },
      { x5u: `${url}/cert.pem` },
    ];
    for (const h of headers) {
      const token = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', ...h }).sign(attacker.privateKey);
      const refused = expectRefused(await verifier.check(request({ headers: { authorization: `Bearer ${token}` } }), NOW), 'forbidden_header');
      assert.match(refused.message, /names its own key \((jku|x5u)\)/);
    }
    // Give any stray request time to arrive before counting.
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.equal(hits, 0, 'the server named in jku/x5u was contacted');
    assert.equal(fetches, 0, 'fetch() was called');
    // The instruments count: one real fetch is seen by both.
    await (await fetch(`${url}/jwks.json`)).text();
    assert.equal(hits, 1);
    assert.equal(fetches, 1);
  });
});
