/**
 * Throwaway certificates on disk for the tools that start a TLS server of their own (bench,
 * soak, fuzz-server): the file names `deno task certs` writes and `--certs DIR` reads.
 *
 * @module
 */

import { type CertificateSet, generateCertificates } from "./certificates.ts";

/** Writes root_ca.crt, server.crt and server.key (owner-only) to `dir`; returns the set. */
export async function writeThrowawayCerts(dir: string): Promise<CertificateSet> {
  await Deno.mkdir(dir, { recursive: true });
  const certs = await generateCertificates();
  await Deno.writeTextFile(`${dir}/root_ca.crt`, certs.caCert);
  await Deno.writeTextFile(`${dir}/server.crt`, certs.serverCert);
  await Deno.writeTextFile(`${dir}/server.key`, certs.serverKey, { mode: 0o600 });
  return certs;
}
