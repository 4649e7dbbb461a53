/**
 * Throwaway certificates in a temporary directory: the one certificate writer of the tests and
 * tools (tools/certificates.ts generates them; this writes them as `deno task certs` names them).
 *
 * @module
 */

import { join } from "node:path";
import { type CertificateSet, generateCertificates } from "../certificates.ts";

/**
 * A fresh throwaway root CA and server certificate, written to a temporary directory and
 * removed on dispose: the one certificate writer of the tests.
 */
export class CertificateDir implements AsyncDisposable {
  readonly dir: string;
  /** The certificates and keys, PEM. */
  readonly set: CertificateSet;

  private constructor(dir: string, set: CertificateSet) {
    this.dir = dir;
    this.set = set;
  }

  /** root_ca.crt, server.crt and server.key, as `deno task certs` names them. */
  static async create(): Promise<CertificateDir> {
    const dir = await Deno.makeTempDir({ prefix: "wirechat_e2e_certs_" });
    const certs = new CertificateDir(dir, await generateCertificates());
    await Deno.writeTextFile(certs.caFile, certs.set.caCert);
    await certs.install(certs.set);
    return certs;
  }

  /** The root CA certificate's PEM text, for in-process TLS clients. */
  get caCert(): string {
    return this.set.caCert;
  }

  /** Writes `set`'s server certificate (and key, unless only the certificate is asked for). */
  async install(set: CertificateSet, parts: "both" | "cert" = "both"): Promise<void> {
    await Deno.writeTextFile(this.certFile, set.serverCert);
    if (parts === "both") await Deno.writeTextFile(this.keyFile, set.serverKey, { mode: 0o600 });
  }

  get caFile(): string {
    return join(this.dir, "root_ca.crt");
  }
  get certFile(): string {
    return join(this.dir, "server.crt");
  }
  get keyFile(): string {
    return join(this.dir, "server.key");
  }
  /** The server options that serve TLS with this set. */
  get serverArgs(): string[] {
    return ["--cert", this.certFile, "--key", this.keyFile];
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await Deno.remove(this.dir, { recursive: true });
  }
}
