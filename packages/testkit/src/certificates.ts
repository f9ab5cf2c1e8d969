import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** One certificate to sign: its subject (default `/CN=<name>`) and its X.509 extensions. */
export interface CertificateRequest {
  readonly subject?: string;
  /** openssl extfile lines, e.g. `subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n`. */
  readonly extensions: string;
}

/**
 * A throwaway CA in `dir` (ca.pem, ca-key.pem) and, for each name, a certificate it signed
 * (<name>.pem, <name>-key.pem), valid one day. EC keys: they are quick to make. Needs openssl.
 */
export async function makeCertificates(
  dir: string,
  certificates: Readonly<Record<string, CertificateRequest>>,
): Promise<void> {
  const openssl = (...args: string[]) => run('openssl', args, { cwd: dir });
  const newKey = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  const oneDay = ['-days', '1'];
  await openssl(
    'req',
    '-x509',
    ...newKey,
    ...oneDay,
    '-subj',
    '/CN=synod-test-ca',
    '-keyout',
    'ca-key.pem',
    '-out',
    'ca.pem',
  );
  for (const [name, { subject, extensions }] of Object.entries(certificates)) {
    await writeFile(join(dir, `${name}.ext`), extensions);
    await openssl(
      'req',
      ...newKey,
      '-subj',
      subject ?? `/CN=${name}`,
      '-keyout',
      `${name}-key.pem`,
      '-out',
      `${name}.csr`,
    );
    await openssl(
      'x509',
      '-req',
      '-in',
      `${name}.csr`,
      ...['-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial'],
      ...oneDay,
      ...['-extfile', `${name}.ext`, '-out', `${name}.pem`],
    );
  }
}
