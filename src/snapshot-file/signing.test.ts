import assert from "node:assert/strict";
import { createHash, generateKeyPairSync, verify as verifySignature } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ExitCode } from "../errors.ts";
import { readSnapshotArchive, type ArchiveContents } from "./archive-reader.ts";
import { ENTRY } from "./format.ts";
import {
  checkSignature,
  enforceSignature,
  loadSigner,
  loadTrustedKeys,
  parsePublicKey,
  signaturePolicy,
  signChecksums,
  type PublicKey,
  type SignaturePolicy,
  type Signer,
} from "./signing.ts";
import { verifyContents } from "./verify.ts";
import { rejectsVm, throwsVm, type Expected } from "./testing/assert.ts";
import { newKey, openSshPrivateKey, pkcs8Pem, writeKeyFile } from "./testing/keys.ts";
import { entry, json, pack, reseal, streamOf, unpack, type Entry } from "./testing/tamper.ts";
import { tempDir, writeSnapshot } from "./testing/snapshot.ts";

/** A key line ssh-keygen made, and what `ssh-keygen -lf` printed for it. */
const VECTOR = {
  line: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIM7HCV9AFcbdkELeuQCeyF07yAcXzaBHxGSUt68aY/7n vector@test",
  fingerprint: "SHA256:GA/tBzenFkpSLbOmDoVbJoTuUFgWaE1EujWn3emlMqk",
};

const keyInvalid = (message: RegExp): Expected => ({
  code: "SIGNING_KEY_INVALID",
  exitCode: ExitCode.usage,
  message,
});
const signatureInvalid = (message: RegExp): Expected => ({
  code: "SIGNATURE_INVALID",
  exitCode: ExitCode.integrity,
  message,
});

async function read(bytes: Buffer): Promise<ArchiveContents> {
  return readSnapshotArchive(streamOf(bytes, 4096), {
    onImage: async (image) => {
      for await (const _ of image);
      return "consumed";
    },
  });
}

describe("signing keys", () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => ({ dir, remove } = await tempDir()));
  after(() => remove());

  it("reads an unencrypted OpenSSH ed25519 key: its public line, comment and ssh-keygen fingerprint", async () => {
    const key = newKey("alice@laptop");
    const path = await writeKeyFile(dir, "id_ed25519", openSshPrivateKey(key, "alice@laptop"));
    const signer = await loadSigner(path);
    assert.equal(signer.publicLine, key.publicLine);
    const blob = Buffer.from(key.publicLine.split(" ")[1]!, "base64");
    assert.equal(
      signer.fingerprint,
      `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`,
    );
    const parsed = parsePublicKey(signer.publicLine)!;
    assert.equal(parsed.fingerprint, signer.fingerprint);
    assert.equal(parsed.comment, "alice@laptop");
  });

  it("reads a PKCS#8 PEM ed25519 key, and its signatures verify with the public line", async () => {
    const key = newKey();
    const signer = await loadSigner(await writeKeyFile(dir, "pem", pkcs8Pem(key)));
    assert.equal(signer.publicLine, key.publicLine);
    const record = signChecksums(signer, Buffer.from("checksums"));
    assert.equal(record.algorithm, "ed25519");
    assert.ok(
      verifySignature(
        null,
        Buffer.from("checksums"),
        parsePublicKey(record.public_key)!.key,
        Buffer.from(record.signature, "base64"),
      ),
    );
  });

  it("refuses keys vm cannot sign with, saying why and what to do", async () => {
    const key = newKey();
    const rsa = generateKeyPairSync("rsa", { modulusLength: 1024 })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    const cases: [string, string, RegExp, RegExp][] = [
      [
        "encrypted",
        openSshPrivateKey(key, "", { cipher: "aes256-ctr" }),
        /encrypted with a passphrase, which vm cannot ask for/,
        /ssh-keygen -p -N ''/,
      ],
      ["rsa.pem", rsa, /rsa\.pem is not an ed25519 private key/, /ssh-keygen -t ed25519/],
      [
        "ecdsa",
        openSshPrivateKey(key, "", { type: "ecdsa-sha2-nistp256" }),
        /is a ecdsa-sha2-nistp256 key; vm signs with ed25519 keys/,
        /ssh-keygen -t ed25519/,
      ],
      [
        "garbage",
        "-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n",
        /garbage is not a readable OpenSSH private key/,
        /ssh-keygen/,
      ],
    ];
    for (const [name, text, message, hint] of cases) {
      const error = await rejectsVm(loadSigner(await writeKeyFile(dir, name, text)), keyInvalid(message));
      assert.match(error.hint!, hint);
    }
    await rejectsVm(
      loadSigner(join(dir, "absent")),
      keyInvalid(/^Cannot read the signing key .*absent \(ENOENT\)$/),
    );
  });

  it("parses ssh-ed25519 public key lines as ssh-keygen prints them, and nothing else", () => {
    const parsed = parsePublicKey(`  ${VECTOR.line}  `)!;
    assert.equal(parsed.fingerprint, VECTOR.fingerprint);
    assert.equal(parsed.comment, "vector@test");
    const [, data] = VECTOR.line.split(" ");
    for (const line of [
      "",
      "# a comment",
      `ssh-rsa ${data}`,
      "ssh-ed25519",
      "ssh-ed25519 !!!notbase64",
      // The blob names another type, or holds a key of the wrong length.
      `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 7]), Buffer.from("ssh-rsa"), Buffer.from([0, 0, 0, 1, 1])]).toString("base64")}`,
      `ssh-ed25519 ${Buffer.concat([Buffer.from([0, 0, 0, 11]), Buffer.from("ssh-ed25519"), Buffer.from([0, 0, 0, 31]), Buffer.alloc(31)]).toString("base64")}`,
    ])
      assert.equal(parsePublicKey(line), undefined, line);
  });

  it("collects trusted keys from every file, skipping other lines; a missing default file is empty", async () => {
    const a = newKey("a");
    const b = newKey("b");
    const file = join(dir, "team.pub");
    await writeFile(file, `# team keys\n${a.publicLine}\nssh-rsa AAAAB3Nza bob\n\n${b.publicLine}\n`);
    const keys = await loadTrustedKeys([join(dir, "no-such-default"), file], [file]);
    assert.deepEqual([...keys.values()].map((k) => k.comment).sort(), ["a", "b"]);
    await rejectsVm(
      loadTrustedKeys([join(dir, "missing.pub")], [join(dir, "missing.pub")]),
      keyInvalid(/^Cannot read the trusted key file .*missing\.pub \(ENOENT\)$/),
    );
  });

  it("takes the requirement from the flag or settings.yaml, and refuses a settings file it cannot read as vm's", async () => {
    const config = join(dir, "config-vm");
    await mkdir(config, { recursive: true });
    const key = newKey("lead");
    await writeFile(join(config, "trusted_keys"), `${key.publicLine}\n`);
    const extra = join(dir, "extra.pub");
    const other = newKey("extra");
    await writeFile(extra, other.publicLine);

    let policy = await signaturePolicy(config, false, []);
    assert.equal(policy.require, false);
    assert.deepEqual(
      [...policy.trusted.values()].map((k) => k.comment),
      ["lead"],
    );
    assert.equal(policy.sources[0], join(config, "trusted_keys"));
    policy = await signaturePolicy(config, true, [extra]);
    assert.equal(policy.require, true);
    assert.deepEqual([...policy.trusted.values()].map((k) => k.comment).sort(), ["extra", "lead"]);

    await writeFile(join(config, "settings.yaml"), "require_signature: true\n");
    assert.equal((await signaturePolicy(config, false, [])).require, true);
    await writeFile(join(config, "settings.yaml"), "require_signature: false\n");
    assert.equal((await signaturePolicy(config, false, [])).require, false);
    for (const [text, code, line] of [
      ["require_signature: yes\n", "SETTINGS_INVALID", /require_signature/],
      ["require_signatures: true\n", "SETTINGS_INVALID", /require_signatures/],
      ["require_signature: [\n", "SETTINGS_SYNTAX", /line/],
    ] as const) {
      await writeFile(join(config, "settings.yaml"), text);
      await rejectsVm(signaturePolicy(config, false, []), {
        code,
        exitCode: ExitCode.config,
        message: [new RegExp(`${escape(join(config, "settings.yaml"))} is (invalid|not valid YAML)`), line],
      });
    }
  });
});

describe("signed snapshot files and the trust policy", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let maker: Signer;
  let makerKey: PublicKey;
  let attacker: Signer;
  let signed: Buffer;
  let unsigned: Buffer;
  before(async () => {
    ({ dir, remove } = await tempDir());
    const key = newKey("team-lead@example");
    maker = await loadSigner(await writeKeyFile(dir, "maker", openSshPrivateKey(key, "team-lead@example")));
    makerKey = parsePublicKey(maker.publicLine)!;
    attacker = await loadSigner(await writeKeyFile(dir, "attacker", pkcs8Pem(newKey())));
    signed = (await writeSnapshot({ dir, compression: "gzip", signer: maker })).bytes;
    unsigned = (await writeSnapshot({ dir, compression: "gzip" })).bytes;
  });
  after(() => remove());

  const policy = (require: boolean, trusted: PublicKey[] = [makerKey]): SignaturePolicy => ({
    require,
    trusted: new Map(trusted.map((k) => [k.fingerprint, k])),
    sources: ["/config/vm/trusted_keys"],
  });
  const enforce = (contents: ArchiveContents, p: SignaturePolicy) =>
    enforceSignature(p, contents.signatureRaw, contents.checksumsRaw, contents.manifest.signed_by);
  const tampered = async (change: (entries: Entry[]) => void) => {
    const { entries } = unpack(signed);
    change(entries);
    const contents = await read(pack(entries, "gzip"));
    return contents;
  };

  it("writes signature.json last, announced by the manifest's signed_by", async () => {
    const contents = await read(signed);
    assert.equal(contents.read.at(-1)!.path, ENTRY.signature);
    assert.equal(contents.manifest.signed_by, maker.fingerprint);
    verifyContents(contents);
    const record = JSON.parse(contents.signatureRaw!.toString("utf8")) as { public_key: string };
    assert.equal(record.public_key, maker.publicLine);
  });

  it("passes a file signed by a trusted key when a signature is required", async () => {
    const signer = enforce(await read(signed), policy(true));
    assert.equal(signer?.fingerprint, maker.fingerprint);
    assert.equal(signer?.comment, "team-lead@example");
  });

  it("checks the signature of a signed file even when none is required, and names its signer", async () => {
    assert.equal(enforce(await read(signed), policy(false, []))?.fingerprint, maker.fingerprint);
  });

  it("refuses a file signed by a key that is not trusted when a signature is required, naming the key", async () => {
    const contents = await read(signed);
    const error = throwsVm(() => enforce(contents, policy(true, [])), {
      code: "SIGNATURE_UNTRUSTED",
      exitCode: ExitCode.integrity,
      message: new RegExp(
        `^The snapshot file is signed by ${escape(maker.fingerprint)} \\(team-lead@example\\), which is not a trusted key$`,
      ),
    });
    assert.match(
      error.hint!,
      /Add its public key line to \/config\/vm\/trusted_keys, or pass --trusted-key FILE/,
    );
  });

  it("refuses an unsigned file when a signature is required, and accepts it otherwise", async () => {
    const contents = await read(unsigned);
    throwsVm(() => enforce(contents, policy(true)), {
      code: "SIGNATURE_MISSING",
      exitCode: ExitCode.integrity,
      message: /^The snapshot file is not signed, and this import requires a signature$/,
    });
    assert.equal(enforce(contents, policy(false)), undefined);
  });

  it("refuses a signed file whose signature.json was stripped, whatever the policy", async () => {
    const contents = await tampered((entries) =>
      entries.splice(
        entries.findIndex((e) => e.name === ENTRY.signature),
        1,
      ),
    );
    verifyContents(contents); // every digest still holds: only the announced signature is missing
    for (const require of [false, true])
      throwsVm(
        () => enforce(contents, policy(require)),
        signatureInvalid(
          new RegExp(
            `^The manifest says the file is signed by ${escape(maker.fingerprint)}, but its signature\\.json is missing: it was removed$`,
          ),
        ),
      );
  });

  it("refuses a tampered signature", async () => {
    const contents = await tampered((entries) => {
      const record = JSON.parse(entry(entries, ENTRY.signature).data.toString("utf8")) as {
        signature: string;
      };
      const bytes = Buffer.from(record.signature, "base64");
      bytes[5]! ^= 0x01;
      record.signature = bytes.toString("base64");
      entry(entries, ENTRY.signature).data = json(record);
    });
    throwsVm(
      () => enforce(contents, policy(false)),
      signatureInvalid(
        new RegExp(
          `^The signature by ${escape(maker.fingerprint)} \\(team-lead@example\\) does not match: the file was changed after it was signed$`,
        ),
      ),
    );
  });

  it("refuses a forged manifest re-sealed without the key: every checksum matches, the signature does not", async () => {
    const contents = await tampered((entries) =>
      reseal(entries, { editManifest: (m) => (m.description = "now with a backdoor") }),
    );
    verifyContents(contents);
    assert.equal(contents.manifest.description, "now with a backdoor");
    for (const require of [false, true])
      throwsVm(
        () => enforce(contents, policy(require)),
        signatureInvalid(/does not match: the file was changed after it was signed/),
      );
  });

  it("refuses a file re-signed by another key under the maker's name", async () => {
    const contents = await tampered((entries) => reseal(entries, { resign: attacker }));
    throwsVm(
      () => enforce(contents, policy(false)),
      signatureInvalid(
        new RegExp(
          `^The manifest says the file is signed by ${escape(maker.fingerprint)}, but signature\\.json is by ${escape(attacker.fingerprint)}$`,
        ),
      ),
    );
  });

  it("a file re-signed as the attacker's own is refused when the maker's key is required", async () => {
    const contents = await tampered((entries) =>
      reseal(entries, { editManifest: (m) => (m.signed_by = attacker.fingerprint), resign: attacker }),
    );
    assert.equal(enforce(contents, policy(false))?.fingerprint, attacker.fingerprint);
    throwsVm(() => enforce(contents, policy(true)), {
      code: "SIGNATURE_UNTRUSTED",
      exitCode: ExitCode.integrity,
      message: new RegExp(`signed by ${escape(attacker.fingerprint)}, which is not a trusted key`),
    });
  });

  it("a file stripped of its signature and its announcement is unsigned: refused when a signature is required", async () => {
    const contents = await tampered((entries) => {
      entries.splice(
        entries.findIndex((e) => e.name === ENTRY.signature),
        1,
      );
      reseal(entries, { editManifest: (m) => delete m.signed_by });
    });
    verifyContents(contents);
    throwsVm(() => enforce(contents, policy(true)), {
      code: "SIGNATURE_MISSING",
      exitCode: ExitCode.integrity,
      message: /not signed/,
    });
  });

  it("refuses a signature.json it cannot read", () => {
    const checksums = Buffer.from("{}");
    throwsVm(
      () => checkSignature(Buffer.from("not json"), checksums),
      signatureInvalid(/^signature\.json is not valid JSON$/),
    );
    for (const record of [
      { algorithm: "rsa", public_key: maker.publicLine, signature: "AAAA" },
      { algorithm: "ed25519", public_key: "ssh-rsa AAAA x", signature: "AAAA" },
      { algorithm: "ed25519", public_key: maker.publicLine },
    ])
      throwsVm(
        () => checkSignature(json(record), checksums),
        signatureInvalid(/^signature\.json is not an ed25519 signature vm can read$/),
      );
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
