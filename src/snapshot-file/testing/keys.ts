/**
 * Test support: ed25519 keys as teams have them, made in the test: OpenSSH private key files (the
 * "openssh-key-v1" layout ssh-keygen writes, built field by field), PKCS#8 PEM files, public key lines.
 */
import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

function u32(n: number): Buffer {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(n);
  return out;
}
function str(data: Buffer | string): Buffer {
  const bytes = Buffer.from(data);
  return Buffer.concat([u32(bytes.length), bytes]);
}

export interface TestKey {
  privateKey: KeyObject;
  /** `ssh-ed25519 AAAA... comment`. */
  publicLine: string;
  /** The raw 32-byte public key. */
  raw: Buffer;
  seed: Buffer;
}

export function newKey(comment = ""): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" });
  const raw = Buffer.from(publicKey.export({ format: "jwk" }).x!, "base64url");
  const seed = Buffer.from(jwk.d!, "base64url");
  const blob = Buffer.concat([str("ssh-ed25519"), str(raw)]);
  return {
    privateKey,
    publicLine: `ssh-ed25519 ${blob.toString("base64")}${comment ? ` ${comment}` : ""}`,
    raw,
    seed,
  };
}

/** The OpenSSH private key file of `key` (cipher "none" unless asked otherwise; `type` to lie about it). */
export function openSshPrivateKey(
  key: TestKey,
  comment: string,
  options: { cipher?: string; type?: string } = {},
): string {
  const type = options.type ?? "ssh-ed25519";
  const publicBlob = Buffer.concat([str(type), str(key.raw)]);
  const check = u32(0x5eed1234);
  let inner = Buffer.concat([
    check,
    check,
    str(type),
    str(key.raw),
    str(Buffer.concat([key.seed, key.raw])),
    str(comment),
  ]);
  const pad: number[] = [];
  for (let i = 1; (inner.length + pad.length) % 8 !== 0; i++) pad.push(i);
  inner = Buffer.concat([inner, Buffer.from(pad)]);
  const cipher = options.cipher ?? "none";
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0"),
    str(cipher),
    str(cipher === "none" ? "none" : "bcrypt"),
    str(cipher === "none" ? Buffer.alloc(0) : Buffer.concat([str(Buffer.alloc(16, 7)), u32(16)])),
    u32(1),
    str(publicBlob),
    str(inner),
  ]);
  const lines = body.toString("base64").match(/.{1,70}/g)!;
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

export async function writeKeyFile(dir: string, name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, { mode: 0o600 });
  return path;
}

export function pkcs8Pem(key: TestKey): string {
  return key.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
}
