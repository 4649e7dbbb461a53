/**
 * Throwaway certificates for TLS between the relay and its clients: a root CA
 * and a server certificate it signs. Tests generate a fresh set in memory; the
 * `deno task certs` tool writes one to disk for people running the programs.
 *
 * The module does no file I/O and needs no permissions: everything happens in
 * WebCrypto, and the results are PEM strings that `Deno.listenTls` and
 * `Deno.connectTls` take as they are.
 *
 * @module
 */

// @peculiar/x509 2.x resolves its classes through tsyringe, which refuses to
// load unless a Reflect metadata polyfill is installed first. ES modules run
// their imports in order, so this line must stay above the x509 import.
import "reflect-metadata";
import * as x509 from "@peculiar/x509";

/** Options for {@linkcode generateCertificates}. */
export interface CertificateSetOptions {
  /**
   * Extra names the server certificate is valid for, besides `localhost`,
   * `127.0.0.1` and `::1`. An IP literal (IPv4 dotted quad or IPv6, brackets
   * allowed) becomes an IP subjectAltName, anything else a DNS one.
   */
  names?: string[];
  /**
   * Days the certificates stay valid from now: an integer from 1 to
   * {@linkcode MAX_DAYS}. Default {@linkcode DEFAULT_DAYS}.
   */
  days?: number;
}

/** A root CA and a server certificate it signed, each as PEM text ending in a newline. */
export interface CertificateSet {
  /** The root CA certificate: what clients pass as `caCerts`. */
  caCert: string;
  /** The root CA's PKCS#8 private key; only needed to sign more certificates. */
  caKey: string;
  /** The server certificate, signed by the root CA. */
  serverCert: string;
  /** The server's PKCS#8 private key. */
  serverKey: string;
}

/**
 * 825 days is the longest validity Apple platforms accept for a TLS server
 * certificate, so the default stays usable beyond rustls.
 */
export const DEFAULT_DAYS = 825;

/** The names every server certificate carries, so local runs work out of the box. */
export const DEFAULT_SERVER_NAMES: readonly string[] = ["localhost", "127.0.0.1", "::1"];

/** A century: far past any use for a throwaway CA, well inside what X.509 dates can express. */
export const MAX_DAYS = 36_500;

const CA_SUBJECT = "CN=wirechat throwaway root CA";
const SERVER_SUBJECT = "CN=localhost";
const DAY_MS = 24 * 60 * 60 * 1000;
/** Back-dating absorbs clock skew between the machine that generates and the one that verifies. */
const BACKDATE_MS = 60 * 60 * 1000;

/**
 * ECDSA P-256 keys generate in milliseconds (RSA takes seconds), so tests can
 * afford a fresh set each, and rustls accepts them.
 */
const KEY_ALGORITHM: EcKeyGenParams = { name: "ECDSA", namedCurve: "P-256" };
const SIGNING_ALGORITHM: EcdsaParams = { name: "ECDSA", hash: "SHA-256" };

/**
 * Create a fresh root CA and a server certificate signed by it.
 *
 * Both keys are new on every call and never leave the returned object, so a
 * leaked set endangers nothing but itself.
 *
 * @throws {TypeError} if a name is neither an IP literal nor a valid DNS name.
 * @throws {RangeError} if `days` is not an integer from 1 to {@linkcode MAX_DAYS}.
 *
 * @example Serve and trust a fresh set
 * ```ts ignore
 * const certs = await generateCertificates({ names: ["example.test"] });
 * const listener = Deno.listenTls({ port: 0, cert: certs.serverCert, key: certs.serverKey });
 * const conn = await Deno.connectTls({ hostname: "localhost", port: listener.addr.port, caCerts: [certs.caCert] });
 * ```
 */
export async function generateCertificates(
  options: CertificateSetOptions = {},
): Promise<CertificateSet> {
  const days = options.days ?? DEFAULT_DAYS;
  if (!Number.isSafeInteger(days) || days < 1 || days > MAX_DAYS) {
    throw new RangeError(
      `Cannot generate certificates: days must be an integer from 1 to ${MAX_DAYS}, got ${days}`,
    );
  }
  const altNames = subjectAltNames([...DEFAULT_SERVER_NAMES, ...(options.names ?? [])]);
  const now = Date.now();
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + days * DAY_MS);

  const caKeys = await generateKeyPair();
  const caCert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerialNumber(),
    name: CA_SUBJECT,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    keys: caKeys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
    ],
  }, crypto);

  const serverKeys = await generateKeyPair();
  const serverCert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerialNumber(),
    subject: SERVER_SUBJECT,
    issuer: caCert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment,
        true,
      ),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth]),
      new x509.SubjectAlternativeNameExtension(altNames),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey, false, crypto),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey, false, crypto),
    ],
  }, crypto);

  return {
    caCert: `${caCert.toString("pem")}\n`,
    caKey: await exportPrivateKey(caKeys.privateKey),
    serverCert: `${serverCert.toString("pem")}\n`,
    serverKey: await exportPrivateKey(serverKeys.privateKey),
  };
}

/**
 * Classify each name as an IP or DNS subjectAltName, dropping duplicates so
 * that passing `localhost` again does not repeat it in the certificate.
 */
function subjectAltNames(names: string[]): x509.JsonGeneralName[] {
  const seen = new Set<string>();
  const result: x509.JsonGeneralName[] = [];
  for (const raw of names) {
    const entry = classifyName(raw);
    const key = `${entry.type}:${entry.value}`;
    if (seen.has(key)) continue;
    seen.add(key);
    result.push(entry);
  }
  return result;
}

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
/** A DNS label per RFC 1123, plus `_` which real-world hostnames use. */
const DNS_LABEL = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * Decide whether a name is an IP literal or a DNS name, and normalise it.
 * Verifiers compare IP SANs byte-for-byte and DNS SANs case-insensitively, so
 * a mistyped name must fail here rather than silently never match.
 */
function classifyName(raw: string): x509.JsonGeneralName {
  const name = raw.trim();
  if (IPV4.test(name)) return { type: "ip", value: name };
  const unbracketed = name.startsWith("[") && name.endsWith("]") ? name.slice(1, -1) : name;
  if (unbracketed.includes(":")) {
    return { type: "ip", value: canonicalIpv6(unbracketed, raw) };
  }
  const dns = name.toLowerCase().replace(/\.$/, "");
  const labels = dns.split(".");
  const wildcard = labels[0] === "*" && labels.length > 2;
  const checked = wildcard ? labels.slice(1) : labels;
  if (dns.length === 0 || dns.length > 253 || !checked.every((label) => DNS_LABEL.test(label))) {
    throw new TypeError(
      `Cannot use "${raw}" as a certificate name: it is neither an IP address nor a DNS name`,
    );
  }
  return { type: "dns", value: dns };
}

/**
 * The WHATWG URL parser already implements IPv6 parsing, including embedded
 * IPv4 tails like `::ffff:10.0.0.1`, and prints the compressed form that the
 * x509 library's simpler parser understands.
 */
function canonicalIpv6(address: string, raw: string): string {
  try {
    const host = new URL(`http://[${address}]/`).hostname;
    return host.slice(1, -1);
  } catch {
    throw new TypeError(
      `Cannot use "${raw}" as a certificate name: it is not a valid IPv6 address`,
    );
  }
}

function generateKeyPair(): Promise<CryptoKeyPair> {
  // Extractable, because the keys are exported as PEM right after signing.
  return crypto.subtle.generateKey(KEY_ALGORITHM, true, ["sign", "verify"]);
}

async function exportPrivateKey(key: CryptoKey): Promise<string> {
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", key);
  return `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`;
}

/**
 * RFC 5280 asks for positive serials of at most 20 octets, unique per issuer;
 * 128 random bits make collisions negligible. The top byte is kept within
 * 0x40..0x7f so the DER integer is positive and exactly 16 octets long.
 */
function randomSerialNumber(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] & 0x3f) | 0x40;
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
