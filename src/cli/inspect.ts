// `meshward inspect FILE [--json]`: a certificate, chain, CSR or CRL described in words (identity, SANs,
// validity and time left, issuer, serial, SHA-256 fingerprint). Thin: the description comes from pki/.
import type { Argv, CommandModule } from 'yargs';
import { describePem, formatDescription } from '../pki/describe.js';
import { failAsUsage, readInputFile } from './command-support.js';

interface InspectArgs { file: string; json?: boolean }

export const inspectCommand: CommandModule<object, InspectArgs> = {
  command: 'inspect <file>',
  describe: 'describe a certificate, chain, CSR or CRL (PEM or DER) in words',
  builder: (y) => failAsUsage(y, 'inspect', 'name the certificate, chain, CSR or CRL file to describe: meshward inspect FILE')
    .positional('file', { type: 'string', demandOption: true, describe: 'the file to read' })
    .option('json', { type: 'boolean', describe: 'print JSON instead of text' }) as unknown as Argv<InspectArgs>,
  handler: (a) => {
    const items = describePem(readInputFile(a.file, 'file'), new Date());
    process.stdout.write(a.json ? `${JSON.stringify(items, null, 2)}\n` : `${formatDescription(items).replace(/\n*$/, '')}\n`);
  },
};
