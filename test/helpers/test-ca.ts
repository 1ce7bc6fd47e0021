import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/**
 * A throwaway certificate authority and one server certificate it signed, for the HTTPS servers the tests
 * run on loopback (test/helpers/file-server.ts). Generated with the `openssl` CLI the first time a test
 * process asks (EC P-256 keys, valid for seven days from now), into a temp dir removed when the
 * process exits. Every test process has its own CA, so parallel test files never share one.
 *
 * The server certificate names IP:127.0.0.1 and DNS:localhost (subjectAltName; clients ignore the CN).
 * The vm a test runs trusts it through `NODE_EXTRA_CA_CERTS=<caPath>` (caEnv()): Node's TLS then trusts
 * the system CAs plus this one. Without it, a TLS connection fails with UNABLE_TO_VERIFY_LEAF_SIGNATURE.
 */
export interface TestCa {
  /** The temp dir holding every file below. */
  dir: string;
  /** The CA's certificate (PEM), the file to name in NODE_EXTRA_CA_CERTS. */
  caPath: string;
  caPem: string;
  /** The server certificate (PEM, leaf only), for 127.0.0.1 and localhost, signed by the CA. */
  certPath: string;
  certPem: string;
  /** The server certificate's private key (PEM, PKCS#8, unencrypted). */
  keyPath: string;
  keyPem: string;
}

let cached: TestCa | undefined;

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.error)
    throw new Error(`test CA: cannot run openssl (${r.error.message}); install it: apt-get install openssl`);
  if (r.status !== 0)
    throw new Error(`test CA: openssl ${args.join(" ")} failed (${r.status}):\n${r.stderr}`);
}

/** The test CA and server certificate of this process (generated on the first call, then the same). */
export function testCa(): TestCa {
  if (cached) return cached;
  const dir = mkdtempSync(join(tmpdir(), "vm-test-ca-"));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  const ec = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"];
  openssl(["genpkey", ...ec, "-out", "ca.key"], dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca.key",
      "-sha256",
      "-days",
      "7",
      "-subj",
      `/CN=vm test CA ${process.pid}`,
      "-addext",
      "basicConstraints=critical,CA:TRUE,pathlen:0",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
      "-out",
      "ca.crt",
    ],
    dir,
  );
  openssl(["genpkey", ...ec, "-out", "server.key"], dir);
  openssl(["req", "-new", "-key", "server.key", "-subj", "/CN=127.0.0.1", "-out", "server.csr"], dir);
  writeFileSync(
    join(dir, "server.ext"),
    [
      "basicConstraints=critical,CA:FALSE",
      "keyUsage=critical,digitalSignature",
      "extendedKeyUsage=serverAuth",
      "subjectAltName=IP:127.0.0.1,DNS:localhost",
      "",
    ].join("\n"),
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-sha256",
      "-days",
      "7",
      "-extfile",
      "server.ext",
      "-out",
      "server.crt",
    ],
    dir,
  );
  const read = (name: string) => readFileSync(join(dir, name), "utf8");
  cached = {
    dir,
    caPath: join(dir, "ca.crt"),
    caPem: read("ca.crt"),
    certPath: join(dir, "server.crt"),
    certPem: read("server.crt"),
    keyPath: join(dir, "server.key"),
    keyPem: read("server.key"),
  };
  return cached;
}

/** The environment that makes a Node child (vm) trust the test CA: `{ NODE_EXTRA_CA_CERTS: caPath }`. */
export function caEnv(): { NODE_EXTRA_CA_CERTS: string } {
  return { NODE_EXTRA_CA_CERTS: testCa().caPath };
}
