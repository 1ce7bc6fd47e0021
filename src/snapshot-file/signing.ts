import { createHash, createPrivateKey, createPublicKey, sign, verify, type KeyObject } from "node:crypto";
import { readFile } from "node:fs/promises";
import { loadSettings } from "../config/settings.ts";
import { VmError, systemErrorCode } from "../errors.ts";

/**
 * Ed25519 signatures over a snapshot file's checksums.json, which binds the manifest and every entry.
 * Keys are the ones teams already have: OpenSSH private keys (unencrypted) and `ssh-ed25519 ...` public
 * key lines, as in authorized_keys; fingerprints read as `ssh-keygen -lf` prints them.
 */
export interface SignatureRecord {
  version: 1;
  algorithm: "ed25519";
  public_key: string;
  signature: string;
}

export interface Signer {
  privateKey: KeyObject;
  publicLine: string;
  fingerprint: string;
}

export interface PublicKey {
  key: KeyObject;
  fingerprint: string;
  comment: string;
}

const keyError = (message: string, hint: string) => new VmError("SIGNING_KEY_INVALID", message, { hint });

class SshReader {
  private offset = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  u32(): number {
    if (this.offset + 4 > this.buf.length) throw new Error("truncated");
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }
  bytes(): Buffer {
    const length = this.u32();
    if (this.offset + length > this.buf.length) throw new Error("truncated");
    const out = this.buf.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }
}

function sshString(data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  return Buffer.concat([length, data]);
}

function ed25519Blob(publicKey: Buffer): Buffer {
  return Buffer.concat([sshString(Buffer.from("ssh-ed25519")), sshString(publicKey)]);
}

function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** Loads the key `--sign` names: an OpenSSH ed25519 private key (or a PKCS#8 PEM one). */
export async function loadSigner(path: string): Promise<Signer> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (error) {
    throw keyError(
      `Cannot read the signing key ${path} (${systemErrorCode(error) ?? "error"})`,
      "Pass the path of an ed25519 private key, e.g. --sign ~/.ssh/id_ed25519",
    );
  }
  if (!text.includes("BEGIN OPENSSH PRIVATE KEY")) {
    try {
      const privateKey = createPrivateKey(text);
      if (privateKey.asymmetricKeyType !== "ed25519") throw new Error("not ed25519");
      const raw = createPublicKey(privateKey).export({ format: "jwk" }).x!;
      const blob = ed25519Blob(Buffer.from(raw, "base64url"));
      return {
        privateKey,
        publicLine: `ssh-ed25519 ${blob.toString("base64")}`,
        fingerprint: fingerprintOf(blob),
      };
    } catch {
      throw keyError(
        `${path} is not an ed25519 private key`,
        "Create one with: ssh-keygen -t ed25519 -f KEYFILE",
      );
    }
  }
  const body = Buffer.from(
    text.replace(/-----(BEGIN|END) OPENSSH PRIVATE KEY-----/g, "").replace(/\s+/g, ""),
    "base64",
  );
  const magic = Buffer.from("openssh-key-v1\0");
  try {
    if (!body.subarray(0, magic.length).equals(magic)) throw new Error("magic");
    const outer = new SshReader(body.subarray(magic.length));
    const cipher = outer.bytes().toString();
    outer.bytes();
    outer.bytes();
    if (cipher !== "none") {
      throw keyError(
        `${path} is encrypted with a passphrase, which vm cannot ask for`,
        "Sign with an unencrypted copy: cp KEY k && ssh-keygen -p -N '' -f k",
      );
    }
    if (outer.u32() !== 1) throw new Error("count");
    outer.bytes();
    const inner = new SshReader(outer.bytes());
    if (inner.u32() !== inner.u32()) throw new Error("checkint");
    const type = inner.bytes().toString();
    if (type !== "ssh-ed25519")
      throw keyError(
        `${path} is a ${type} key; vm signs with ed25519 keys`,
        "Create one with: ssh-keygen -t ed25519 -f KEYFILE",
      );
    const publicKey = inner.bytes();
    const secret = inner.bytes();
    const comment = inner.bytes().toString();
    const privateKey = createPrivateKey({
      key: {
        kty: "OKP",
        crv: "Ed25519",
        d: secret.subarray(0, 32).toString("base64url"),
        x: publicKey.toString("base64url"),
      },
      format: "jwk",
    });
    const blob = ed25519Blob(publicKey);
    return {
      privateKey,
      publicLine: `ssh-ed25519 ${blob.toString("base64")}${comment ? ` ${comment}` : ""}`,
      fingerprint: fingerprintOf(blob),
    };
  } catch (error) {
    if (error instanceof VmError) throw error;
    throw keyError(
      `${path} is not a readable OpenSSH private key`,
      "Create one with: ssh-keygen -t ed25519 -f KEYFILE",
    );
  }
}

/** Parses one `ssh-ed25519 AAAA... comment` line; undefined for anything else. */
export function parsePublicKey(line: string): PublicKey | undefined {
  const [type, data, ...rest] = line.trim().split(/\s+/);
  if (type !== "ssh-ed25519" || !data) return undefined;
  try {
    const blob = Buffer.from(data, "base64");
    const reader = new SshReader(blob);
    if (reader.bytes().toString() !== "ssh-ed25519") return undefined;
    const raw = reader.bytes();
    if (raw.length !== 32) return undefined;
    const key = createPublicKey({
      key: { kty: "OKP", crv: "Ed25519", x: raw.toString("base64url") },
      format: "jwk",
    });
    return { key, fingerprint: fingerprintOf(blob), comment: rest.join(" ") };
  } catch {
    return undefined;
  }
}

/** Trusted keys: every ed25519 line of the given files (missing files are simply empty). */
export async function loadTrustedKeys(files: string[], mustExist: string[]): Promise<Map<string, PublicKey>> {
  const keys = new Map<string, PublicKey>();
  for (const file of files) {
    let text = "";
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      if (mustExist.includes(file))
        throw keyError(
          `Cannot read the trusted key file ${file} (${systemErrorCode(error) ?? "error"})`,
          "Pass a file with ssh-ed25519 public key lines",
        );
    }
    for (const line of text.split("\n")) {
      const key = parsePublicKey(line);
      if (key) keys.set(key.fingerprint, key);
    }
  }
  return keys;
}

export function signChecksums(signer: Signer, checksums: Buffer): SignatureRecord {
  return {
    version: 1,
    algorithm: "ed25519",
    public_key: signer.publicLine,
    signature: sign(null, checksums, signer.privateKey).toString("base64"),
  };
}

/** Checks a signature over checksums.json; returns who signed, or throws saying what is wrong. */
export function checkSignature(raw: Buffer, checksums: Buffer): PublicKey {
  let record: Partial<SignatureRecord>;
  try {
    record = JSON.parse(raw.toString("utf8")) as Partial<SignatureRecord>;
  } catch {
    throw signatureError("signature.json is not valid JSON");
  }
  const key = typeof record.public_key === "string" ? parsePublicKey(record.public_key) : undefined;
  if (record.algorithm !== "ed25519" || !key || typeof record.signature !== "string")
    throw signatureError("signature.json is not an ed25519 signature vm can read");
  if (!verify(null, checksums, key.key, Buffer.from(record.signature, "base64"))) {
    throw signatureError(
      `The signature by ${key.fingerprint}${key.comment ? ` (${key.comment})` : ""} does not match: the file was changed after it was signed`,
    );
  }
  return key;
}

function signatureError(message: string): VmError {
  return new VmError("SIGNATURE_INVALID", message, {
    hint: "Get a fresh copy from its maker; nothing was imported",
  });
}

export interface SignaturePolicy {
  require: boolean;
  trusted: Map<string, PublicKey>;
  sources: string[];
}

/**
 * Which signatures import accepts: `--require-signature`, or `require_signature: true` in
 * $XDG_CONFIG_HOME/vm/settings.yaml; trusted keys from $XDG_CONFIG_HOME/vm/trusted_keys and --trusted-key.
 */
export async function signaturePolicy(
  configDir: string,
  requireFlag: boolean,
  trustedKeyFiles: string[],
): Promise<SignaturePolicy> {
  // A settings.yaml that cannot be read as vm's settings is an error (exit 3), never a quiet "off".
  const settings = await loadSettings(`${configDir}/settings.yaml`);
  const require = requireFlag || settings.require_signature === true;
  const defaultFile = `${configDir}/trusted_keys`;
  const trusted = await loadTrustedKeys([defaultFile, ...trustedKeyFiles], trustedKeyFiles);
  return { require, trusted, sources: [defaultFile, ...trustedKeyFiles] };
}

/** Applies the policy to a file's signature (or its absence); returns the signer when there is one. */
export function enforceSignature(
  policy: SignaturePolicy,
  signatureRaw: Buffer | undefined,
  checksumsRaw: Buffer | undefined,
  announced: string | undefined,
): PublicKey | undefined {
  if (announced && !signatureRaw) {
    throw signatureError(
      `The manifest says the file is signed by ${announced}, but its signature.json is missing: it was removed`,
    );
  }
  if (!signatureRaw || !checksumsRaw) {
    if (!policy.require) return undefined;
    throw new VmError(
      "SIGNATURE_MISSING",
      "The snapshot file is not signed, and this import requires a signature",
      {
        hint: "Ask its maker to export it with --sign KEY, or import without --require-signature (and without require_signature in settings.yaml)",
      },
    );
  }
  const signer = checkSignature(signatureRaw, checksumsRaw);
  if (announced && announced !== signer.fingerprint) {
    throw signatureError(
      `The manifest says the file is signed by ${announced}, but signature.json is by ${signer.fingerprint}`,
    );
  }
  if (policy.require && !policy.trusted.has(signer.fingerprint)) {
    throw new VmError(
      "SIGNATURE_UNTRUSTED",
      `The snapshot file is signed by ${signer.fingerprint}${signer.comment ? ` (${signer.comment})` : ""}, which is not a trusted key`,
      {
        hint: `Add its public key line to ${policy.sources[0]}, or pass --trusted-key FILE`,
      },
    );
  }
  return signer;
}
