import assert from "node:assert/strict";
import { once } from "node:events";
import { PassThrough, type Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import { ExitCode } from "../errors.ts";
import type { Compression } from "../lib/codec.ts";
import { encodeHeader } from "../lib/tar-header.ts";
import { readSnapshotArchive } from "./archive-reader.ts";
import { ENTRY, type Manifest } from "./format.ts";
import { MAX_EXPANSION, streamGuard } from "./stream-guard.ts";
import { checkVmError, rejectsVm } from "./testing/assert.ts";
import { json, manifestOf, streamOf, unpack } from "./testing/tamper.ts";
import { tempDir, writeSnapshot } from "./testing/snapshot.ts";
import { tarEntry } from "./testing/tar.ts";

const MiB = 1024 * 1024;
/** One zero-filled buffer handed over again and again: the guard counts bytes, it never keeps them. */
const ZEROS = Buffer.alloc(16 * MiB);

/**
 * A stream guard watching stand-in streams: `compressed` bytes are said to have been read, then the
 * decompressed side yields a manifest entry and the header of an image entry, then `expanded` bytes of it.
 */
function guarded(compression: Compression, manifest: Manifest | undefined) {
  const input = new PassThrough();
  const decompressor = new PassThrough();
  decompressor.on("error", () => {});
  const guard = streamGuard(input, decompressor, compression, () => manifest);
  let out = 0;
  const feed = {
    read(n: number) {
      input.emit("data", Buffer.alloc(n));
    },
    start() {
      const head = Buffer.concat([
        tarEntry({ name: ENTRY.manifest, data: "{}" }),
        encodeHeader({ name: ENTRY.image, size: 64 * 1024 * MiB }),
      ]);
      out += head.length;
      decompressor.emit("data", head);
    },
    /** Emits decompressed data until `total` bytes in all have come out. */
    expandTo(total: number) {
      while (out < total) {
        const n = Math.min(ZEROS.length, total - out);
        decompressor.emit("data", ZEROS.subarray(0, n));
        out += n;
      }
    },
    get out() {
      return out;
    },
    get failure() {
      return guard.failure;
    },
    decompressor,
  };
  return feed;
}

const bomb = (why: RegExp) => ({
  code: "ARCHIVE_INVALID",
  exitCode: ExitCode.integrity,
  message: [/looks like a decompression bomb/, why],
});

function manifestWith(fields: Partial<Manifest>): Manifest {
  return { size_bytes: 0, ...fields } as Manifest;
}

describe("streamGuard: the decompression bomb rules", () => {
  it(`past the first 256 MiB, refuses output more than ${MAX_EXPANSION} times the compressed bytes read`, () => {
    const g = guarded("gzip", manifestWith({ size_bytes: 4096 * MiB }));
    g.read(1000);
    g.start();
    // Under the floor any ratio passes: small files compress very well.
    g.expandTo(256 * MiB);
    assert.equal(g.failure, undefined);
    g.expandTo(256 * MiB + 1);
    const error = checkVmError(
      g.failure,
      bomb(/from 1000 compressed bytes, more than 500 times the compressed size/),
    );
    assert.equal(error.hint, "Do not import this file; get the snapshot from its source again");
    assert.equal(g.decompressor.destroyed, true, "the decompressor is stopped");
    assert.equal(g.decompressor.errored, error, "with the same error");
  });

  it(`allows exactly ${MAX_EXPANSION} times the compressed bytes, and refuses one block more`, () => {
    // Volumes lift the manifest's bound, so only the ratio is in play.
    const g = guarded("zstd", manifestWith({ size_bytes: 1, volumes: ["v"] }));
    g.read(MiB);
    g.start();
    g.expandTo(MAX_EXPANSION * MiB);
    assert.equal(g.failure, undefined);
    g.expandTo(MAX_EXPANSION * MiB + 512);
    checkVmError(g.failure, bomb(/more than 500 times the compressed size/));
  });

  it("more compressed input read raises the ratio's allowance as it goes", () => {
    const g = guarded("gzip", manifestWith({ size_bytes: 1, volumes: ["v"] }));
    g.read(MiB);
    g.start();
    g.expandTo(400 * MiB);
    g.read(MiB);
    g.expandTo(900 * MiB);
    assert.equal(g.failure, undefined);
  });

  it("refuses output past twice the manifest's image size plus 512 MiB, however well it compresses", () => {
    const size = 3 * MiB;
    const g = guarded("gzip", manifestWith({ size_bytes: size }));
    g.read(1024 * MiB); // a ratio of about 1: only the manifest's bound can stop it
    g.start();
    g.expandTo(2 * size + 512 * MiB);
    assert.equal(g.failure, undefined);
    g.expandTo(2 * size + 512 * MiB + 1);
    checkVmError(g.failure, bomb(new RegExp(`past twice the ${size}-byte image its manifest describes`)));
  });

  it("applies no manifest bound to a file with volumes (their sizes are not recorded)", () => {
    const g = guarded("zstd", manifestWith({ size_bytes: 0, volumes: ["data"] }));
    g.read(1024 * MiB);
    g.start();
    g.expandTo(1024 * MiB);
    assert.equal(g.failure, undefined);
  });

  it("applies the ratio before the manifest is known", () => {
    const g = guarded("gzip", undefined);
    g.read(100);
    g.start();
    g.expandTo(300 * MiB);
    checkVmError(g.failure, bomb(/more than 500 times/));
  });

  it("does not judge the expansion of an uncompressed file (its bytes are the file's)", () => {
    const g = guarded("none", manifestWith({ size_bytes: 0 }));
    g.start();
    g.expandTo(1024 * MiB);
    assert.equal(g.failure, undefined);
  });

  it("keeps the first failure: output past the manifest's bound later does not replace it", () => {
    const g = guarded("gzip", manifestWith({ size_bytes: 0 }));
    g.read(100);
    g.start();
    g.expandTo(300 * MiB);
    const first = g.failure;
    checkVmError(first, bomb(/more than 500 times/));
    g.expandTo(600 * MiB);
    assert.equal(g.failure, first);
  });
});

/** A zstd frame of raw blocks holding `raw`, then RLE blocks of `zeros` zero bytes: a bomb costs nothing. */
function zstdBomb(raw: Buffer, zeros: number): Buffer {
  const BLOCK = 128 * 1024;
  const parts: Buffer[] = [Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, (20 - 10) << 3])]; // window 1 MiB, no content size
  const block = (type: 0 | 1, size: number, last: boolean, content: Buffer) => {
    const header = Buffer.alloc(3);
    header.writeUIntLE((size << 3) | (type << 1) | (last ? 1 : 0), 0, 3);
    parts.push(header, content);
  };
  for (let at = 0; at < raw.length; at += BLOCK)
    block(0, Math.min(BLOCK, raw.length - at), false, raw.subarray(at, at + BLOCK));
  for (let left = zeros; left > 0; left -= BLOCK)
    block(1, Math.min(BLOCK, left), left <= BLOCK, Buffer.from([0]));
  return Buffer.concat(parts);
}

describe("readSnapshotArchive stops a decompression bomb", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let manifest: Manifest;
  before(async () => {
    ({ dir, remove } = await tempDir());
    manifest = manifestOf(unpack((await writeSnapshot({ dir, compression: "none" })).bytes).entries);
  });
  after(() => remove());

  const read = (bytes: Buffer) =>
    readSnapshotArchive(streamOf(bytes, 64 * 1024), {
      onImage: async (image: Readable) => {
        image.resume();
        await once(image, "end");
        return "consumed";
      },
    });

  it("refuses a tiny file whose image expands past 500 times its size, before inflating it", async () => {
    // The manifest claims a big image, so the header check lets it by: the ratio stops it.
    const claimed = 2048 * MiB;
    const head = Buffer.concat([
      tarEntry({ name: ENTRY.manifest, data: json({ ...manifest, size_bytes: claimed }) }),
      encodeHeader({ name: ENTRY.image, size: claimed }),
    ]);
    const file = zstdBomb(head, claimed);
    assert.ok(file.length < 100 * 1024);
    const error = await rejectsVm(
      read(file),
      bomb(new RegExp(`from ${file.length} compressed bytes, more than 500 times`)),
    );
    const expanded = Number(/more than (\d+) bytes/.exec(error.message)![1]);
    assert.ok(expanded > 256 * MiB && expanded < 300 * MiB, `stopped at ${expanded} bytes`);
  });
});
