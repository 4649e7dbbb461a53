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

import {
  bitString,
  boolean,
  explicit,
  implicit,
  octetString,
  oid,
  pem,
  sequence,
  set,
  smallInteger,
  time,
  unsignedInteger,
  utf8String,
} from "./der.ts";

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
  const serverKeys = await generateKeyPair();
  const caKeyId = await keyIdentifier(caKeys.publicKey);
  const caCert = await signCertificate({
    subject: CA_SUBJECT,
    issuer: CA_SUBJECT,
    notBefore,
    notAfter,
    publicKey: caKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      extension(OID.basicConstraints, true, sequence(boolean(true))),
      // keyCertSign (bit 5) and cRLSign (bit 6): 0b0000011_, one unused bit.
      extension(OID.keyUsage, true, bitString(Uint8Array.of(0x06), 1)),
      extension(OID.subjectKeyIdentifier, false, octetString(caKeyId)),
    ],
  });
  const serverCert = await signCertificate({
    subject: SERVER_SUBJECT,
    issuer: CA_SUBJECT,
    notBefore,
    notAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    extensions: [
      extension(OID.basicConstraints, true, sequence()),
      // digitalSignature (bit 0) and keyEncipherment (bit 2): 0b101_____, five unused bits.
      extension(OID.keyUsage, true, bitString(Uint8Array.of(0xa0), 5)),
      extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth))),
      extension(OID.subjectAltName, false, sequence(...altNames.map(generalName))),
      extension(
        OID.subjectKeyIdentifier,
        false,
        octetString(await keyIdentifier(serverKeys.publicKey)),
      ),
      extension(OID.authorityKeyIdentifier, false, sequence(implicit(0, caKeyId))),
    ],
  });

  return {
    caCert: pem("CERTIFICATE", caCert),
    caKey: await exportPrivateKey(caKeys.privateKey),
    serverCert: pem("CERTIFICATE", serverCert),
    serverKey: await exportPrivateKey(serverKeys.privateKey),
  };
}

/** The object identifiers a certificate here uses (RFC 5280, RFC 5758). */
const OID = {
  commonName: "2.5.4.3",
  ecdsaWithSha256: "1.2.840.10045.4.3.2",
  basicConstraints: "2.5.29.19",
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  serverAuth: "1.3.6.1.5.5.7.3.1",
  subjectAltName: "2.5.29.17",
  subjectKeyIdentifier: "2.5.29.14",
  authorityKeyIdentifier: "2.5.29.35",
} as const;

/** What {@linkcode signCertificate} puts in a certificate. */
interface CertificateFields {
  /** "CN=..." */
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  publicKey: CryptoKey;
  signingKey: CryptoKey;
  extensions: Uint8Array[];
}

/** A distinguished name of one common name, from "CN=...". */
function name(distinguished: string): Uint8Array {
  const common = distinguished.replace(/^CN=/, "");
  return sequence(set(sequence(oid(OID.commonName), utf8String(common))));
}

/** One Extension: its OID, critical flag (DER leaves out the default false) and value. */
function extension(id: string, critical: boolean, value: Uint8Array): Uint8Array {
  return sequence(oid(id), ...(critical ? [boolean(true)] : []), octetString(value));
}

/** A subjectAltName entry: dNSName [2] or iPAddress [7] (4 or 16 bytes). */
function generalName(entry: AltName): Uint8Array {
  return entry.type === "dns"
    ? implicit(2, new TextEncoder().encode(entry.value))
    : implicit(7, ipBytes(entry.value));
}

/** An IPv4 dotted quad or a compressed IPv6 address (as canonicalIpv6 gives) as bytes. */
function ipBytes(address: string): Uint8Array {
  if (!address.includes(":")) return Uint8Array.from(address.split(".").map(Number));
  const [head, tail] = address.split("::");
  const groups = (part: string | undefined) => part ? part.split(":") : [];
  const left = groups(head);
  const right = tail === undefined ? [] : groups(tail);
  const zeros = new Array(8 - left.length - right.length).fill("0");
  const all = [...left, ...(tail === undefined ? [] : zeros), ...right];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    const value = parseInt(group, 16);
    bytes[2 * i] = value >> 8;
    bytes[2 * i + 1] = value & 0xff;
  });
  return bytes;
}

/** The SHA-1 of the public key's bits: RFC 5280 §4.2.1.2's method (1) key identifier. */
async function keyIdentifier(key: CryptoKey): Promise<Uint8Array> {
  const raw = await crypto.subtle.exportKey("raw", key);
  return new Uint8Array(await crypto.subtle.digest("SHA-1", raw));
}

/** Builds the TBSCertificate, signs it with ECDSA P-256/SHA-256, and returns the DER. */
async function signCertificate(fields: CertificateFields): Promise<Uint8Array> {
  const algorithm = sequence(oid(OID.ecdsaWithSha256));
  const spki = new Uint8Array(await crypto.subtle.exportKey("spki", fields.publicKey));
  const tbs = sequence(
    explicit(0, smallInteger(2)), // v3
    unsignedInteger(randomSerialNumber()),
    algorithm,
    name(fields.issuer),
    sequence(time(fields.notBefore), time(fields.notAfter)),
    name(fields.subject),
    spki,
    explicit(3, sequence(...fields.extensions)),
  );
  const raw = new Uint8Array(
    await crypto.subtle.sign(SIGNING_ALGORITHM, fields.signingKey, tbs),
  );
  // WebCrypto gives r || s; X.509 wants SEQUENCE { INTEGER r, INTEGER s }.
  const half = raw.length / 2;
  const signature = sequence(
    unsignedInteger(raw.subarray(0, half)),
    unsignedInteger(raw.subarray(half)),
  );
  return sequence(tbs, algorithm, bitString(signature));
}

/** A subjectAltName before encoding. */
interface AltName {
  type: "dns" | "ip";
  value: string;
}

/**
 * Classify each name as an IP or DNS subjectAltName, dropping duplicates so
 * that passing `localhost` again does not repeat it in the certificate.
 */
function subjectAltNames(names: string[]): AltName[] {
  const seen = new Set<string>();
  const result: AltName[] = [];
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
function classifyName(raw: string): AltName {
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
 * IPv4 tails like `::ffff:10.0.0.1`, and prints the compressed form that
 * {@linkcode ipBytes} reads.
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
  return pem("PRIVATE KEY", new Uint8Array(pkcs8));
}

/**
 * RFC 5280 asks for positive serials of at most 20 octets, unique per issuer;
 * 128 random bits make collisions negligible. The top byte is kept within
 * 0x40..0x7f so the DER integer is positive and exactly 16 octets long.
 */
function randomSerialNumber(): Uint8Array {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[0] = (bytes[0] & 0x3f) | 0x40;
  return bytes;
}
