/** Self-signed certificates made with openssl at test time, for the doors' TLS tests (SAN: the name and 127.0.0.1). */
import { execFileSync } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCert {
  certFile: string;
  keyFile: string;
  combinedFile: string;
  cert: Buffer;
  key: Buffer;
  /** SHA-256 of the DER certificate, 64 lowercase hex. */
  fingerprint: string;
}

export function makeTempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'hubbub-tls-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function makeCert(dir: string, name: string, cn = 'localhost'): TestCert {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-days',
      '2',
      '-subj',
      `/CN=${cn}`,
      '-addext',
      `subjectAltName=DNS:${cn},IP:127.0.0.1`,
      '-keyout',
      keyFile,
      '-out',
      certFile,
    ],
    { stdio: 'ignore' },
  );
  const cert = readFileSync(certFile);
  const key = readFileSync(keyFile);
  const combinedFile = join(dir, `${name}-combined.pem`);
  writeFileSync(combinedFile, Buffer.concat([key, cert]), { mode: 0o600 });
  const der = new X509Certificate(cert).raw;
  return { certFile, keyFile, combinedFile, cert, key, fingerprint: createHash('sha256').update(der).digest('hex') };
}
