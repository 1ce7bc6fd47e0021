import assert from "node:assert/strict";
import { PassThrough, Readable } from "node:stream";
import { after, before, describe, it } from "node:test";
import zlib from "node:zlib";
import { ExitCode } from "../errors.ts";
import { readSnapshotArchive } from "./archive-reader.ts";
import { rejectsVm } from "./testing/assert.ts";
import { pack, streamOf, unpack } from "./testing/tamper.ts";
import { tempDir, writeSnapshot, type WrittenSnapshot } from "./testing/snapshot.ts";

describe("reading a file handed over whole or cut short", () => {
  let dir: { dir: string; remove: () => Promise<void> };
  let written: WrittenSnapshot;
  before(async () => {
    dir = await tempDir();
    written = await writeSnapshot({ dir: dir.dir, compression: "gzip" });
  });
  after(() => dir.remove());

  it("reads a stream that gives all of the file in one chunk and ends at once", async () => {
    const ended = new PassThrough();
    ended.end(written.bytes);
    for (const stream of [Readable.from([written.bytes]), ended]) {
      const contents = await readSnapshotArchive(stream);
      assert.deepEqual(contents.manifest, written.manifest);
    }
  });

  it("rejects a file cut inside the image even with no image handler, and the process lives on", async () => {
    const tar = pack(unpack(written.bytes).entries, "none");
    const gz = zlib.gzipSync(tar);
    const cut = gz.subarray(0, Math.floor(gz.length * 0.8));
    await rejectsVm(readSnapshotArchive(streamOf(cut, 512)), {
      code: "ARCHIVE_INVALID",
      exitCode: ExitCode.integrity,
      message: /cannot be read|truncated/,
    });
    // An unheard 'error' event would have ended the process by now.
    await new Promise((resolve) => setTimeout(resolve, 20));
  });
});
