import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { createReadStream } from "node:fs";
import { writeFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { readSnapshotArchive, type ArchiveContents } from "./archive-reader.ts";
import { ENTRY, HEAD_ENTRIES, documents, parseManifest } from "./format.ts";
import { ImageVerifier, verifyContents } from "./verify.ts";
import { readManifestOnly, verifyArchiveFile } from "./verify-file.ts";
import { sha256 } from "./writer.ts";
import { dockerSave, layerTar, sha256hex } from "./testing/docker-save.ts";
import { compress, decompress, json, streamOf } from "./testing/tamper.ts";
import { tempDir, writeSnapshot } from "./testing/snapshot.ts";
import { readTar } from "./testing/tar.ts";
import { rejectsVm } from "./testing/assert.ts";
import { ExitCode } from "../errors.ts";
import type { Compression } from "../lib/codec.ts";

const COMPRESSIONS: Compression[] = ["gzip", "zstd", "none"];
const noStdin = () => Readable.from([]);

/** Reads a file with handlers that keep the image's and the volumes' bytes, as import streams them. */
async function readAll(
  bytes: Buffer,
  piece = 1000,
): Promise<{
  contents: ArchiveContents;
  image: Buffer;
  volumes: [string, Buffer][];
}> {
  let image = Buffer.alloc(0);
  const volumes: [string, Buffer][] = [];
  const collect = async (stream: Readable) => {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  };
  const contents = await readSnapshotArchive(streamOf(bytes, piece), {
    onImage: async (stream) => {
      image = await collect(stream);
      return "consumed";
    },
    onVolume: async (name, stream) => void volumes.push([name, await collect(stream)]),
  });
  return { contents, image, volumes };
}

describe("snapshot file round trip (writer → reader)", () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => ({ dir, remove } = await tempDir()));
  after(() => remove());

  const volumeSets: Record<string, Record<string, Buffer>> = {
    "no volumes": {},
    "two volumes": {
      // A volume tar as the engine's archive API gives it; the reader treats its bytes as opaque.
      "node-modules": layerTar({ "index.js": "module.exports = 1;\n" }),
      cache: layerTar({ "a/b": "x".repeat(5000) }),
    },
  };

  for (const compression of COMPRESSIONS) {
    for (const sink of ["file", "stream"] as const) {
      for (const [label, volumes] of Object.entries(volumeSets)) {
        it(`reads back every entry byte for byte: ${compression}, written to a ${sink}, ${label}`, async () => {
          const written = await writeSnapshot({ dir, compression, stream: sink === "stream", volumes });
          const { contents, image, volumes: got } = await readAll(written.bytes);
          assert.equal(contents.kind, "vm");
          assert.equal(contents.compression, compression);
          assert.deepEqual(contents.manifest, written.manifest);
          assert.ok(image.equals(written.image.tar), "images/base.tar is exactly the save stream");
          assert.deepEqual(
            got.map(([name, data]) => [name, data.toString("hex")]),
            Object.entries(volumes).map(([name, data]) => [name, data.toString("hex")]),
          );
          const docs = documents(written.metadata, written.manifest.snapshot_name);
          for (const path of HEAD_ENTRIES) assert.ok(contents.small.get(path)!.equals(docs[path]!), path);
          const order = [
            ENTRY.manifest,
            ...HEAD_ENTRIES,
            ENTRY.image,
            ...Object.keys(volumes).map((v) => `volumes/${v}.tar`),
            ENTRY.checksums,
          ];
          assert.deepEqual(
            contents.read.map((e) => e.path),
            order,
          );
          assert.equal(
            contents.read.find((e) => e.path === ENTRY.image)!.sha256,
            sha256hex(written.image.tar),
          );
          // checksums.json lists every entry before it, manifest.json included, with what was read.
          assert.deepEqual(
            contents.checksums!.entries,
            contents.read.filter((e) => e.path !== ENTRY.checksums),
          );
          assert.equal(contents.checksums!.manifest_sha256, sha256(contents.manifestRaw));
          assert.equal(contents.signatureRaw, undefined);
          assert.equal(contents.stoppedAtImage, false);
          verifyContents(contents);
        });
      }
    }
  }

  it("writes what plain gzip, zstd and tar read: ustar regular files in the format's order, a clean end", async () => {
    for (const compression of COMPRESSIONS) {
      const written = await writeSnapshot({ dir, compression, volumes: { data: layerTar({ f: "1" }) } });
      const head = written.bytes.subarray(0, 10).toString("hex");
      if (compression === "gzip") assert.equal(head, "1f8b0800000000000003", "vm's gzip member header");
      if (compression === "zstd") assert.equal(head.slice(0, 8), "28b52ffd");
      const { tar } = decompress(written.bytes);
      assert.equal(tar.length % 512, 0);
      assert.ok(tar.subarray(tar.length - 1024).equals(Buffer.alloc(1024)), "ends with two zero blocks");
      if (compression === "none") assert.equal(tar.subarray(0, 13).toString(), "manifest.json");
      const entries = readTar(tar);
      assert.deepEqual(
        entries.map((e) => [e.name, e.type]),
        [
          ...[ENTRY.manifest, ...HEAD_ENTRIES, ENTRY.image, "volumes/data.tar", ENTRY.checksums].map((p) => [
            p,
            "file",
          ]),
        ],
      );
      // The header of images/base.tar was reserved before its size was known and filled in afterwards.
      assert.ok(entries.find((e) => e.name === ENTRY.image)!.data.equals(written.image.tar));
      const at = headerAt(tar, ENTRY.image);
      assert.equal(tar.toString("latin1", at + 156, at + 157), "0", "type 0");
      assert.equal(tar.toString("latin1", at + 257, at + 263), "ustar\u0000", "ustar magic");
      assert.equal(Number.parseInt(tar.toString("latin1", at + 124, at + 135), 8), written.image.tar.length);
    }
  });

  it("writes an image of several compression chunks (1 MiB gzip members, 2 MiB zstd frames) intact", async () => {
    // Incompressible layer bytes, so the image spans several members and frames.
    const image = dockerSave({ layers: [{ big: randomBytes(2 * 1024 * 1024 + 300_000) }] });
    for (const compression of ["gzip", "zstd"] as const) {
      const written = await writeSnapshot({ dir, compression, image });
      const { contents, image: got } = await readAll(written.bytes, 256 * 1024);
      assert.ok(got.equals(image.tar));
      verifyContents(contents);
    }
  });

  it("verifies a good file of either save layout, from a path and from standard input", async () => {
    for (const layout of ["legacy", "oci"] as const) {
      for (const compression of COMPRESSIONS) {
        const written = await writeSnapshot({ dir, compression, image: dockerSave({ layout }) });
        const fromPath = await verifyArchiveFile(written.path, "/", () => {}, noStdin());
        assert.equal(fromPath.kind, "vm");
        if (fromPath.kind === "vm") assert.equal(fromPath.manifest.image_digest, written.image.configDigest);
        let counted = 0;
        const fromStdin = await verifyArchiveFile(
          "-",
          "/",
          (n) => (counted += n),
          createReadStream(written.path),
        );
        assert.equal(fromStdin.kind, "vm");
        assert.equal(counted, written.bytes.length, "every byte of the file was read and counted");
      }
    }
  });

  it("proves the image's identity as it streams: config digest, diff IDs, and the OCI manifest digest", async () => {
    for (const layout of ["legacy", "oci"] as const) {
      const image = dockerSave({ layout });
      const verifier = new ImageVerifier();
      Readable.from([image.tar.subarray(0, 700), image.tar.subarray(700)]).pipe(verifier.input);
      const identity = await verifier.identity();
      assert.equal(identity.configDigest, image.configDigest);
      assert.equal(identity.configPath, image.configPath);
      assert.deepEqual(identity.diffIds, image.diffIds);
      assert.deepEqual(identity.manifestDigests, layout === "oci" ? [image.engineId] : []);
    }
  });

  it("is the same snapshot after decompressing and compressing again with other settings", async () => {
    const written = await writeSnapshot({ dir, compression: "gzip", volumes: { v: layerTar({ x: "y" }) } });
    const { tar } = decompress(written.bytes);
    for (const compression of COMPRESSIONS) {
      const again = compress(tar, compression);
      assert.ok(compression === "none" || !again.equals(written.bytes));
      const { contents } = await readAll(again);
      assert.equal(contents.compression, compression);
      assert.deepEqual(contents.manifest, written.manifest);
      verifyContents(contents);
      const path = `${dir}/again-${compression}`;
      await writeFile(path, again);
      assert.equal((await verifyArchiveFile(path, "/", () => {}, noStdin())).kind, "vm");
    }
  });

  it("inspect reads only the head: a file cut inside the image still gives its manifest, verify refuses it", async () => {
    // An image of a few MiB, cut in its middle: the reader has the head long before the file's end.
    const image = dockerSave({ layers: [{ big: "z".repeat(3 * 1024 * 1024) }] });
    const written = await writeSnapshot({ dir, compression: "none", image });
    const { tar } = decompress(written.bytes);
    const cut = `${dir}/cut.snapshot.tar`;
    await writeFile(cut, tar.subarray(0, headerAt(tar, ENTRY.image) + 512 + 2 * 1024 * 1024));
    const head = await readManifestOnly(cut, "/", noStdin());
    assert.ok("manifest" in head);
    assert.deepEqual(head.manifest, written.manifest);
    await rejectsVm(
      verifyArchiveFile(cut, "/", () => {}, noStdin()),
      {
        code: "ARCHIVE_INVALID",
        exitCode: ExitCode.integrity,
        message: /cannot be read|truncated/,
      },
    );
  });

  it("reports a reader that stops at the image (the engine has it) as stopped, and checks only the head", async () => {
    const written = await writeSnapshot({ dir, compression: "zstd" });
    const contents = await readSnapshotArchive(streamOf(written.bytes, 512), { onImage: async () => "skip" });
    assert.equal(contents.stoppedAtImage, true);
    assert.equal(contents.checksums, undefined);
    assert.deepEqual(
      contents.read.map((e) => e.path),
      [ENTRY.manifest, ...HEAD_ENTRIES],
    );
    verifyContents(contents);
  });

  it('reads the design document\'s string version "1.0" as version 1', async () => {
    const written = await writeSnapshot({ dir, compression: "none" });
    for (const version of ["1.0", "1", 1]) {
      const manifest = parseManifest(json({ ...written.manifest, version }));
      assert.equal(manifest.version, 1);
      assert.equal(manifest.snapshot_name, written.manifest.snapshot_name);
    }
  });

  it("names missing files and folders given as the input", async () => {
    await rejectsVm(
      verifyArchiveFile(`${dir}/nope.snapshot.tar.gz`, "/", () => {}, noStdin()),
      {
        code: "INPUT_NOT_FOUND",
        exitCode: ExitCode.notFound,
        message: /nope\.snapshot\.tar\.gz does not exist/,
      },
    );
    await rejectsVm(
      verifyArchiveFile(dir, "/", () => {}, noStdin()),
      {
        code: "INPUT_NOT_A_FILE",
        exitCode: ExitCode.usage,
        message: new RegExp(`${dir} is not a file`),
      },
    );
  });
});

/** Offset of the header of the entry `name` in an uncompressed tar (headers sit on 512-byte blocks). */
function headerAt(tar: Buffer, name: string): number {
  for (let at = 0; at < tar.length; at += 512)
    if (tar.toString("utf8", at, at + name.length + 1) === `${name}\u0000`) return at;
  throw new Error(`no header for ${name}`);
}
