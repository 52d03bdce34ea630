/** TLS material for the §2.8 upgrade: one server certificate, TLS ≥ 1.2 with 1.3 offered. */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from '@hubbub/runtime';

/** §6.1 modern suites only: TLS 1.3 suites, then ECDHE with AEAD ciphers for TLS 1.2 (no CBC, no RSA key exchange). */
export const MODERN_CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

/**
 * Reads the certificate chain and key once (a combined PEM may be given as both). Logs a warn
 * line when the key file is readable by other users (§6.1).
 */
export function loadSecureContext(certFile: string, keyFile: string, log: Logger): SecureContext {
  const cert = readFileSync(certFile);
  const key = keyFile === certFile ? cert : readFileSync(keyFile);
  try {
    if ((statSync(keyFile).mode & 0o044) !== 0)
      log.warn({ keyFile, code: 'IRCB_TLS_KEY_READABLE' }, 'TLS key file is readable by other users');
  } catch {
    // The read above succeeded; a failing stat changes nothing.
  }
  return createSecureContext({
    cert,
    key,
    minVersion: 'TLSv1.2',
    maxVersion: 'TLSv1.3',
    ciphers: MODERN_CIPHERS,
    honorCipherOrder: true,
  });
}

/** SHA-256 over the DER leaf certificate the client presented, 64 lowercase hex; undefined when none. */
export function clientCertFingerprint(s: TLSSocket): string | undefined {
  const c = s.getPeerCertificate(false) as { raw?: Buffer } | null;
  if (!c || !c.raw || c.raw.length === 0) return undefined;
  return createHash('sha256').update(c.raw).digest('hex');
}
