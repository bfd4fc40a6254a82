// `meshward ca init|crl|list|rotate|serve`: create and run the certificate authority. Thin: parse the
// flags, call the Authority, say what happened. `ca serve` belongs to the CA service (./ca-serve.ts).
import { formatDuration, formatTime } from '../duration.js';
import { writeFilesAtomic } from '../files.js';
import { Authority } from '../ca/authority.js';
import { KEY_TYPES, type KeyType } from '../pki/keys.js';
import { caServeCommand } from './ca-serve.js';
import { caImportCommand, caMigrateCommand } from './ca-store.js';
import { caDirCommand, commandGroup, durationFlag, withAuthority } from './command-support.js';

const initCommand = caDirCommand('ca init', 'dir', {
  describe: 'create a new root and intermediate CA in --dir (refuses to overwrite without --force)',
  dirDescribe: 'the CA directory to create',
  options: (y) => y
    .option('trust-domain', { type: 'string', demandOption: true, describe: 'the SPIFFE trust domain, e.g. example.org' })
    .option('key-type', { type: 'string', choices: KEY_TYPES, describe: 'CA key type, also the default for issued keys (default ec-p256)' })
    .option('root-ttl', { type: 'string', describe: 'root lifetime (default 87600h, 10 years)' })
    .option('intermediate-ttl', { type: 'string', describe: 'intermediate lifetime (default 8760h, 1 year)' })
    .option('force', { type: 'boolean', describe: 'replace an existing CA in --dir (destroys its keys)' }),
  handler: async (a) => {
    const rootTtlMs = a['root-ttl'] === undefined ? undefined : durationFlag(a['root-ttl'], '--root-ttl');
    const intermediateTtlMs = a['intermediate-ttl'] === undefined ? undefined : durationFlag(a['intermediate-ttl'], '--intermediate-ttl');
    const ca = await Authority.init(a.dir, {
      trustDomain: a['trust-domain'], keyType: a['key-type'] as KeyType | undefined, rootTtlMs, intermediateTtlMs, force: a.force, store: a.store,
    }, new Date());
    try {
      const lines = [`created a CA for trust domain ${ca.trustDomain} in ${a.dir}`];
      for (const c of await ca.authorities()) lines.push(`  ${c.role.padEnd(12)} ${c.serialHex}  valid until ${formatTime(c.notAfter)}`);
      lines.push(`  trust bundle ${a.dir}/bundle.crt, CRLs ${a.dir}/crl.pem, settings ${a.dir}/config.yaml`);
      if (ca.store.kind === 'postgres') {
        lines.push(`  state in ${ca.storeDescription}${ca.config.store !== undefined ? ' (recorded as store: in config.yaml)' : ': pass the same --store (or set MESHWARD_STORE) for every command; a DSN with a password is not written to config.yaml'}`);
      }
      lines.push(`next: meshward cert issue --ca-dir ${a.dir} --spiffe-id spiffe://${ca.trustDomain}/ns/NS/sa/SA --out DIR`);
      process.stdout.write(`${lines.join('\n')}\n`);
    } finally {
      await ca.close();
    }
  },
});

const crlCommand = caDirCommand('ca crl', 'dir', {
  describe: 'publish fresh CRLs (one per CA certificate still trusted) to --dir/crl.pem and print them (or write --out)',
  options: (y) => y
    .option('out', { type: 'string', describe: 'also write the CRLs to this file instead of printing them' }),
  handler: async (a) => {
    const pem = await withAuthority(a.dir, a.store, (ca) => ca.crlPem(new Date()));
    if (a.out) {
      writeFilesAtomic([{ path: a.out, data: pem }]);
      const count = pem.split('-----BEGIN X509 CRL-----').length - 1;
      process.stdout.write(`wrote ${count} CRL${count === 1 ? '' : 's'} to ${a.out}\n`);
    } else {
      process.stdout.write(pem);
    }
  },
});

const listCommand = caDirCommand('ca list', 'dir', {
  describe: 'list issued certificates (serial, identity, not-after, status) and the CA\'s own certificates',
  options: (y) => y
    .option('json', { type: 'boolean', describe: 'print JSON' }),
  handler: async (a) => {
    const now = new Date();
    const { authorities, certificates } = await withAuthority(a.dir, a.store, async (ca) => ({ authorities: await ca.authorities(now), certificates: await ca.list(now) }));
    if (a.json) {
      process.stdout.write(`${JSON.stringify({ authorities, certificates }, null, 2)}\n`);
      return;
    }
    const rows: string[][] = [['SERIAL', 'IDENTITY', 'NOT AFTER', 'STATUS']];
    for (const c of certificates) {
      rows.push([c.serialHex, c.spiffeId, formatTime(c.notAfter), c.status === 'revoked' ? `revoked (${c.reason})` : c.status]);
    }
    const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
    const table = rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '));
    const lines = ['CA certificates:'];
    for (const c of authorities) {
      const when = c.status === 'pending' ? `, signs from ${formatTime(c.activatesAt)}` : '';
      lines.push(`  ${c.role.padEnd(12)} ${c.serialHex}  ${c.status}${when}, valid until ${formatTime(c.notAfter)}`);
    }
    lines.push('', certificates.length === 0 ? 'no certificates issued yet' : `${certificates.length} issued certificate${certificates.length === 1 ? '' : 's'}:`);
    if (certificates.length > 0) lines.push(...table);
    process.stdout.write(`${lines.join('\n')}\n`);
  },
});

const rotateCommand = caDirCommand('ca rotate', 'dir', {
  describe: 'make a new intermediate (with --root also a new root) while the old stay trusted; --finish retires the old chain once its last leaf expired',
  options: (y) => y
    .option('root', { type: 'boolean', describe: 'also make a new root (added to bundle.crt beside the old one at once)' })
    .option('activate-in', { type: 'string', describe: 'when the new chain starts signing (default: 0s, or defaultTtl with --root so every workload has the new bundle first)' })
    .option('finish', { type: 'boolean', describe: 'retire the previous chain (refused while its certificates are still valid)' })
    .conflicts('finish', ['root', 'activate-in']),
  handler: async (a) => {
    const now = new Date();
    if (a.finish) {
      const r = await withAuthority(a.dir, a.store, (ca) => ca.finishRotation(now));
      process.stdout.write(`${r.retired.map((c) => `retired ${c.role} CA ${c.serialHex} of ${a.dir}`).join('\n')}\n`
        + `rewrote ${a.dir}/bundle.crt and ${a.dir}/crl.pem without them\n`);
      return;
    }
    const activateInMs = a['activate-in'] === undefined ? undefined : durationFlag(a['activate-in'], '--activate-in');
    const r = await withAuthority(a.dir, a.store, (ca) => ca.rotate({ root: a.root, activateInMs }, now));
    const lines: string[] = [];
    if (r.root) lines.push(`new root CA ${r.root.serialHex}, valid until ${formatTime(r.root.notAfter)}, added to ${a.dir}/bundle.crt`);
    lines.push(`new intermediate CA ${r.intermediate.serialHex}, valid until ${formatTime(r.intermediate.notAfter)}`);
    const delay = r.activatesAt.getTime() - now.getTime();
    lines.push(delay > 0
      ? `it signs from ${formatTime(r.activatesAt)} (in ${formatDuration(delay)}); until then the current chain signs`
      : 'it signs from now on');
    lines.push(`the previous chain stays trusted: once its last certificate expired, run meshward ca rotate --dir ${a.dir} --finish`);
    process.stdout.write(`${lines.join('\n')}\n`);
  },
});

export const caCommand = commandGroup('ca', 'the certificate authority: init, crl, list, rotate, serve, migrate, import',
  [initCommand, crlCommand, listCommand, rotateCommand, caServeCommand, caMigrateCommand, caImportCommand],
  'name a ca command: init, crl, list, rotate, serve, migrate or import');
