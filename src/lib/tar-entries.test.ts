import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { END_OF_ARCHIVE, encodeHeader } from "./tar-header.ts";
import { tarEntries } from "./tar-entries.ts";

function tarOf(files: { name: string; data: Buffer }[], end = true): Buffer {
  const parts: Buffer[] = [];
  for (const { name, data } of files) {
    parts.push(
      encodeHeader({ name, size: data.length }),
      data,
      Buffer.alloc((512 - (data.length % 512)) % 512),
    );
  }
  if (end) parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

function chunked(bytes: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
  return Readable.from(chunks);
}

async function readAll(bytes: Buffer, chunk: number, slow = false) {
  const { input, entries } = tarEntries((error) => new Error(`damaged: ${error.message}`));
  const feeding = pipeline(chunked(bytes, chunk), input);
  feeding.catch(() => {});
  const out: { name: string; kind: string; data: string }[] = [];
  for (let next = await entries.next(); !next.done; next = await entries.next()) {
    const parts: Buffer[] = [];
    for await (const part of next.value) {
      parts.push(part as Buffer);
      if (slow) await sleep(1);
    }
    out.push({
      name: next.value.header.name,
      kind: next.value.header.kind,
      data: Buffer.concat(parts).toString(),
    });
  }
  await feeding;
  return out;
}

describe("tarEntries (lib/tar-entries.ts)", () => {
  const files = [
    { name: "manifest.json", data: Buffer.from("{}") },
    { name: "empty", data: Buffer.alloc(0) },
    { name: "images/base.tar", data: Buffer.alloc(1536 * 1024 + 7, 0x61) },
  ];

  it("hands the entries over in order, each with its data, split at any byte, at a slow reader's pace", async () => {
    for (const [chunk, slow] of [
      [1, false],
      [511, false],
      [64 * 1024, true],
      [1 << 22, false],
    ] as const) {
      const out = await readAll(tarOf(files), chunk, slow);
      assert.deepEqual(
        out.map((e) => [e.name, e.kind, e.data.length]),
        files.map((f) => [f.name, "file", f.data.length]),
        `chunks of ${chunk}`,
      );
      assert.equal(out[2]!.data, files[2]!.data.toString());
    }
  });

  it("reports a damaged header and a tar cut inside an entry with the framing error", async () => {
    const bytes = tarOf(files);
    const damaged = Buffer.from(bytes);
    damaged[512 * 2 + 10] = damaged[512 * 2 + 10]! ^ 0xff; // the second header
    await assert.rejects(readAll(damaged, 4096), /damaged: Not a tar header/);
    await assert.rejects(
      readAll(bytes.subarray(0, 512 * 4 + 100), 4096),
      /damaged: The tar ends in the middle/,
    );
  });

  it("refuses non-zero bytes where a tar writer leaves zeros (after the end)", async () => {
    const bytes = Buffer.concat([tarOf(files), Buffer.from([0, 0, 1])]);
    await assert.rejects(readAll(bytes, 4096), /damaged: non-zero byte/);
  });

  it("lets a reader stop early: return() ends the input, and an unread entry is no uncaught error", async () => {
    const { input, entries } = tarEntries();
    const feeding = pipeline(chunked(tarOf(files), 4096), input);
    const first = await entries.next();
    assert.equal(first.done ? undefined : first.value.header.name, "manifest.json");
    await entries.return!();
    assert.deepEqual(await entries.next(), { value: undefined, done: true });
    await feeding.catch(() => {});
  });
});
