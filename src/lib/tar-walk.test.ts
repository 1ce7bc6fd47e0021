import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { END_OF_ARCHIVE, encodeHeader, padding } from "./tar-header.ts";
import { TarWalker, type TarEntry } from "./tar-walk.ts";

function archive(sizes: number[]): Buffer {
  const parts: Buffer[] = [];
  sizes.forEach((size, i) => {
    parts.push(encodeHeader({ name: `f${i}`, size }), Buffer.alloc(size, 0x61), padding(size));
  });
  parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

/** A header with another type flag (e.g. "x", a PAX header), its checksum made right again. */
function withType(header: Buffer, flag: string): Buffer {
  const out = Buffer.from(header);
  out.write(flag, 156, 1, "latin1");
  out.fill(" ", 148, 156);
  let sum = 0;
  for (const byte of out) sum += byte;
  out.write(sum.toString(8).padStart(6, "0") + "\u0000 ", 148, 8, "latin1");
  return out;
}

/** Pushes `bytes` in pieces of `piece` bytes to a strict walker; returns the first complaint. */
function check(bytes: Buffer, piece: number): string | undefined {
  const walker = new TarWalker(() => undefined, { strict: true });
  try {
    for (let at = 0; at < bytes.length; at += piece) walker.push(bytes.subarray(at, at + piece), []);
    walker.finish();
  } catch (error) {
    return (error as Error).message;
  }
  return undefined;
}

describe("TarWalker", () => {
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
    const size = 0o77777777777 + 1;
    const seen: TarEntry[] = [];
    const walker = new TarWalker((entry) => void seen.push(entry), { strict: true });
    walker.push(encodeHeader({ name: "big", size }), []);
    // 8 GiB of data would follow; a non-zero byte there is data, not padding.
    walker.push(Buffer.alloc(1024, 0xff), []);
    assert.deepEqual(seen, [
      { name: "big", size, type: "file", kind: "file", linkname: "", start: 0, dataStart: 512 },
    ]);
  });

  it("hands each entry's data to its handler and applies PAX paths, split at any byte", () => {
    const long = `${"deep/".repeat(30)}file.txt`;
    // A PAX record counts its own length: "<length> path=<value>\n".
    const body = ` path=${long}\n`;
    const pax = Buffer.from(`${body.length + String(body.length + 3).length}${body}`);
    const tar = Buffer.concat([
      withType(encodeHeader({ name: "PaxHeader", size: pax.length }), "x"),
      pax,
      padding(pax.length),
      encodeHeader({ name: "short", size: 5 }),
      Buffer.from("hello"),
      padding(5),
      END_OF_ARCHIVE,
    ]);
    for (const piece of [1, 13, 512, tar.length]) {
      const files: [string, string][] = [];
      const walker = new TarWalker((entry) => {
        const chunks: Buffer[] = [];
        return {
          data: (c) => void chunks.push(Buffer.from(c)),
          end: () => void files.push([entry.name, Buffer.concat(chunks).toString()]),
        };
      });
      for (let at = 0; at < tar.length; at += piece) walker.push(tar.subarray(at, at + piece), []);
      walker.finish();
      assert.deepEqual(files, [[long, "hello"]], `pieces of ${piece}`);
    }
  });

  it("refuses a block that is not a tar header, and a tar that ends inside an entry", () => {
    assert.match(check(Buffer.alloc(512, 0x41), 512) ?? "", /Not a tar header/);
    assert.match(check(good.subarray(0, 1100), 100) ?? "", /ends in the middle of an entry/);
  });
});
