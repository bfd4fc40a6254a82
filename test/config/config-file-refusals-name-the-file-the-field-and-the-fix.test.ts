// The one loader every meshward file goes through (src/config-file.ts): each refusal is one line
// "FILE: field.path: what is wrong and what to do", an unknown key names the valid fields at its place
// (inside lists, optional sections and transformed values too), an inline section is named by the
// field that holds it, and reading errors carry the code a caller acts on. A valid file loads typed.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ConfigFile, configError } from '../../src/config-file.js';
import { isMeshwardError, type ErrorCode } from '../../src/errors.js';

const schema = z
  .strictObject({
    server: z.strictObject({
      listen: z.string({ error: (iss) => (iss.input === undefined ? 'is required' : 'must be HOST:PORT') }),
      app: z.string().optional(),
    }),
    keys: z
      .array(z.strictObject({ id: z.string(), scopes: z.array(z.string()).optional() }))
      .optional(),
    mode: z.enum(['enforce', 'audit']).optional(),
    ttl: z
      .string()
      .transform((s) => s.length)
      .optional(),
    extra: z.union([z.string(), z.strictObject({ path: z.string() })]).optional(),
  })
  .superRefine((c, ctx) => {
    if (ctx.issues.length > 0) return;
    if (c.mode === 'audit' && c.keys === undefined) ctx.addIssue({ code: 'custom', path: ['mode'], message: 'audit needs keys: add a keys list' });
  });

const FILE = new ConfigFile(schema, { what: 'the test settings', ifMissing: 'create it with meshward init' });

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'meshward-config-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

function refusal(fn: () => unknown): { code: ErrorCode; message: string } {
  try {
    fn();
  } catch (err) {
    assert.ok(isMeshwardError(err), `not a MeshwardError: ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `one line: ${err.message}`);
    return { code: err.code, message: err.message };
  }
  assert.fail('accepted');
}

// [what, YAML text, the whole message]
const refusals: [string, string, string][] = [
  ['a misspelled top-level key', 'server: {listen: a}\nmdoe: audit\n', 't.yaml: mdoe: unknown field (did you mean "mode"?); valid fields here: server, keys, mode, ttl, extra'],
  ['an unknown key with no near field', 'server: {listen: a}\ncolour: red\n', 't.yaml: colour: unknown field; valid fields here: server, keys, mode, ttl, extra'],
  ['an unknown key in a nested mapping', 'server: {listen: a, lisen: b}\n', 't.yaml: server.lisen: unknown field (did you mean "listen"?); valid fields here: listen, app'],
  ['an unknown key in a list item', 'server: {listen: a}\nkeys:\n  - {id: k, scope: [x]}\n', 't.yaml: keys[0].scope: unknown field (did you mean "scopes"?); valid fields here: id, scopes'],
  ['an unknown key in a union member', 'server: {listen: a}\nextra: {path: /x, mode: 1}\n', 't.yaml: extra.mode: unknown field; valid fields here: path'],
  ['a missing section', 'mode: enforce\n', 't.yaml: server: is required'],
  ['a missing field, with the schema\'s own sentence', 'server: {}\n', 't.yaml: server.listen: is required'],
  ['a wrong type, with the schema\'s own sentence', 'server: {listen: 5}\n', 't.yaml: server.listen: must be HOST:PORT'],
  ['a wrong type, worded by the loader', 'server: {listen: a}\nkeys: {id: k}\n', 't.yaml: keys: expected a list, got a mapping'],
  ['a value outside an enum', 'server: {listen: a}\nmode: enforcing\n', 't.yaml: mode: "enforcing" is not one of enforce, audit'],
  ['a cross-field rule', 'server: {listen: a}\nmode: audit\n', 't.yaml: mode: audit needs keys: add a keys list'],
  ['several problems at once', 'server: {listen: 1}\nmode: x\nkeys: [{}]\n', 't.yaml: server.listen: must be HOST:PORT; keys[0].id: is required; mode: "x" is not one of enforce, audit'],
  ['a list instead of a mapping', '- a\n', 't.yaml: must be a YAML mapping (fields: server, keys, mode, ttl, extra), got a list'],
  ['a scalar instead of a mapping', 'hello\n', 't.yaml: must be a YAML mapping (fields: server, keys, mode, ttl, extra), got "hello"'],
  ['an empty file (its required fields say what is missing)', '', 't.yaml: server: is required'],
  ['broken YAML, with its line', 'server:\n  listen: [\n', 't.yaml:3: not valid YAML: '],
  ['a duplicated key', 'server: {listen: a}\nserver: {listen: b}\n', 't.yaml:2: not valid YAML: Map keys must be unique'],
  ['an alias bomb', `a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nserver: {listen: a}\n`, 't.yaml: not valid YAML: Excessive alias count indicates a resource exhaustion attack; expand the aliases'],
];

for (const [what, text, expected] of refusals) {
  test(`refused: ${what}`, () => {
    const r = refusal(() => FILE.parse(text, 't.yaml'));
    assert.equal(r.code, 'invalid_argument');
    if (expected.endsWith(': ')) assert.ok(r.message.startsWith(expected), r.message);
    else assert.equal(r.message, expected);
  });
}

test('more than five problems: five spelled out, the rest counted', () => {
  const keys = Array.from({ length: 7 }, () => '{}').join(', ');
  const r = refusal(() => FILE.parse(`server: {listen: a}\nkeys: [${keys}]\n`, 't.yaml'));
  assert.match(r.message, /^t\.yaml: keys\[0\]\.id: is required; .*keys\[4\]\.id: is required \(and 2 more\)$/);
});

test('an inline section is named by the file and the field that holds it', () => {
  const r = refusal(() => FILE.validate({ server: { listen: 'a', lisen: 'b' } }, { file: 'sidecar.yaml', at: ['credentials', 'apiKeys'] }));
  assert.equal(r.message, 'sidecar.yaml: credentials.apiKeys.server.lisen: unknown field (did you mean "listen"?); valid fields here: listen, app');
  const c = refusal(() => { throw configError({ file: 'sidecar.yaml', at: ['policy'] }, [{ path: ['routes', 1], message: 'can never match' }]); });
  assert.equal(c.message, 'sidecar.yaml: policy.routes[1]: can never match');
});

test('a usage code applies to every refusal about the file, reading included', () => {
  const usage = new ConfigFile(schema, { what: 'the config file', ifMissing: 'pass an existing file to --config', code: 'usage' });
  assert.equal(refusal(() => usage.parse('mdoe: 1\n', 'c.yaml')).code, 'usage');
  assert.equal(refusal(() => usage.parse('a: [\n', 'c.yaml')).code, 'usage');
  const missing = refusal(() => usage.load(join(dir, 'absent.yaml')));
  assert.deepEqual(missing, { code: 'usage', message: `${join(dir, 'absent.yaml')}: cannot read the config file (ENOENT): no such file; pass an existing file to --config` });
});

test('reading errors say why, with the code a caller acts on', () => {
  const absent = join(dir, 'absent.yaml');
  assert.deepEqual(refusal(() => FILE.load(absent)), { code: 'not_found', message: `${absent}: cannot read the test settings (ENOENT): no such file; create it with meshward init` });
  const folder = join(dir, 'a-folder');
  mkdirSync(folder);
  assert.deepEqual(refusal(() => FILE.load(folder)), { code: 'invalid_argument', message: `${folder}: cannot read the test settings (EISDIR): it is a directory; name a file` });
  assert.equal(FILE.loadIfPresent(absent), undefined, 'an optional file that is absent is no error');
  assert.equal(refusal(() => FILE.loadIfPresent(folder)).code, 'invalid_argument', 'an optional file that is unreadable is');
  if (process.getuid?.() !== 0) {
    // Root reads every file whatever its mode, so this case runs only for other users.
    const locked = join(dir, 'locked.yaml');
    writeFileSync(locked, 'server: {listen: a}\n', { mode: 0o000 });
    chmodSync(locked, 0o000);
    assert.equal(refusal(() => FILE.load(locked)).code, 'permission_denied');
  }
});

test('a valid file loads typed, named in later messages as asked', () => {
  const path = join(dir, 'good.yaml');
  writeFileSync(path, 'server: {listen: "127.0.0.1:1"}\nttl: abc\nkeys: [{id: k}]\nmode: audit\n');
  assert.deepEqual(FILE.load(path), { server: { listen: '127.0.0.1:1' }, ttl: 3, keys: [{ id: 'k' }], mode: 'audit' });
  writeFileSync(path, 'server: {listen: 1}\n');
  assert.equal(refusal(() => FILE.load(path, 'good.yaml')).message, 'good.yaml: server.listen: must be HOST:PORT');
});
