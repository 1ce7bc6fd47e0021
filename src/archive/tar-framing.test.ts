import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { TarFraming } from "./tar-framing.ts";
import { END_OF_ARCHIVE, encodeHeader, padding } from "./tar-header.ts";

function archive(sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  sizes.forEach((size, i) => {
    parts.push(encodeHeader({ name: `f${i}`, size }), Buffer.alloc(size, 0x61), padding(size));
  });
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** Pushes `bytes` in pieces of `piece` bytes; returns the first complaint. */
function check(bytes: Buffer, piece: number): string | undefined {
  const framing = new TarFraming();
  for (let at = 0; at < bytes.length; at += piece) {
    const problem = framing.push(bytes.subarray(at, at + piece));
    if (problem) return problem;
  }
  return undefined;
}

describe("TarFraming", () => {
  const sizes = [0, 1, 511, 512, 513, 3000];
  const good = archive(sizes);
  // Where f1's single data byte is followed by its 511 bytes of padding.
  const paddingAt = 512 /* f0 header */ + 512 /* f1 header */ + 1;

  it("accepts a well-formed archive however it is split into chunks", () => {
    for (const piece of [1, 7, 511, 512, 513, 4096, good.length])
      assert.equal(check(good, piece), undefined, `pieces of ${piece}`);
  });

  it("accepts extra zero blocks after the end, as tar's record blocking leaves them", () => {
    assert.equal(check(Buffer.concat([good, Buffer.alloc(8192)]), 1000), undefined);
  });

  it("reports a non-zero byte in an entry's padding with its offset", () => {
    for (const piece of [1, 100, good.length]) {
      const bad = Buffer.from(good);
      bad[paddingAt + 10] = 1;
      assert.equal(
        check(bad, piece),
        `non-zero byte at offset ${paddingAt + 10} of the archive, in the padding after an entry's data`,
      );
    }
  });

  it("reports anything but zeros after the end-of-archive block", () => {
    const bad = Buffer.concat([good, Buffer.from("junk")]);
    assert.equal(
      check(bad, 333),
      `non-zero byte at offset ${good.length} of the archive, after the end-of-archive block`,
    );
    const flipped = Buffer.from(good);
    flipped[good.length - 3] = 0x10;
    assert.match(check(flipped, 512) ?? "", /after the end-of-archive block/);
  });

  it("does not look inside entries' data (zeros or not)", () => {
    const zeros = Buffer.concat([
      encodeHeader({ name: "z", size: 2048 }),
      Buffer.alloc(2048),
      END_OF_ARCHIVE,
    ]);
    assert.equal(check(zeros, 100), undefined);
  });

  it("reads base-256 sizes (entries past 8 GiB) without losing its place", () => {
    const header = encodeHeader({ name: "big", size: 0o77777777777 + 1 });
    const framing = new TarFraming();
    assert.equal(framing.push(header), undefined);
    // 8 GiB of data would follow; a non-zero byte there is data, not padding.
    assert.equal(framing.push(Buffer.alloc(1024, 0xff)), undefined);
  });
});
