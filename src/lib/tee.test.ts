import assert from "node:assert/strict";
import { PassThrough, Writable } from "node:stream";
import { setTimeout as sleep } from "node:timers/promises";
import { describe, it } from "node:test";
import { copyOf, tee } from "./tee.ts";

/** A writable that keeps what it gets, slowly when asked (a small buffer, so backpressure is real). */
function collector(delayMs = 0) {
  const chunks: Buffer[] = [];
  const stream = new Writable({
    highWaterMark: 4,
    write(chunk: Buffer, _encoding, callback) {
      chunks.push(Buffer.from(chunk));
      if (delayMs) setTimeout(callback, delayMs);
      else callback();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString() };
}

async function* parts(items: string[], failAfter?: number) {
  let n = 0;
  for (const item of items) {
    if (failAfter !== undefined && n++ === failAfter) throw new Error("source broke");
    await sleep(1);
    yield Buffer.from(item);
  }
}

describe("tee (lib/tee.ts)", () => {
  it("gives every target the whole source, at the slowest one's pace, and ends them", async () => {
    const fast = collector();
    const slow = collector(2);
    let seen = "";
    await tee(parts(["ab", "cd", "ef", "gh"]), [{ stream: fast.stream }, { stream: slow.stream }], {
      onChunk: (c) => (seen += c.toString()),
    });
    assert.equal(fast.text(), "abcdefgh");
    assert.equal(slow.text(), "abcdefgh");
    assert.equal(seen, "abcdefgh");
    assert.ok(fast.stream.writableEnded && slow.stream.writableEnded);
  });

  it("drops an optional target that stops early and feeds the rest to the end", async () => {
    const kept = collector();
    const refusing = new PassThrough({ highWaterMark: 1 });
    refusing.once("data", () => refusing.destroy());
    refusing.on("error", () => {});
    await tee(parts(["one", "two", "three"]), [
      { stream: kept.stream },
      { stream: refusing, optional: true },
    ]);
    assert.equal(kept.text(), "onetwothree");
  });

  it("fails when a required target is closed before the end", async () => {
    const closed = new PassThrough();
    closed.destroy();
    await assert.rejects(tee(parts(["x", "y"]), [{ stream: closed }]), /required copy/);
  });

  it("destroys every target with the source's error (or what errorFor makes of it) and rejects", async () => {
    const a = collector();
    const b = collector();
    const errors: string[] = [];
    a.stream.on("error", (e) => errors.push(e.message));
    b.stream.on("error", (e) => errors.push(e.message));
    await assert.rejects(
      tee(parts(["1", "2", "3"], 2), [{ stream: a.stream }, { stream: b.stream }], {
        errorFor: (e) => new Error(`decoded: ${(e as Error).message}`),
      }),
      /decoded: source broke/,
    );
    await sleep(5);
    assert.deepEqual(errors, ["decoded: source broke", "decoded: source broke"]);
    assert.equal(a.text(), "12");
  });

  it("copyOf hands a stream of its own and settles when the copy is complete", async () => {
    let size = 0;
    const { copy, done } = copyOf(parts(["abc", "de"]), (c) => (size += c.length));
    const chunks: Buffer[] = [];
    for await (const chunk of copy) chunks.push(chunk as Buffer);
    await done;
    assert.equal(Buffer.concat(chunks).toString(), "abcde");
    assert.equal(size, 5);
  });
  it("hands on a Readable's chunks as they were pushed, never joined into new buffers", async () => {
    const pushed = [
      Buffer.from("a".repeat(1000)),
      Buffer.from("b".repeat(1000)),
      Buffer.from("c".repeat(1000)),
    ];
    const source = new PassThrough();
    for (const chunk of pushed) source.write(chunk);
    source.end();
    const seen: Buffer[] = [];
    await sleep(5); // all three are buffered before the tee reads: a paused-mode read() would join them
    await tee(source, [{ stream: collector(2).stream }], { onChunk: (c) => seen.push(c) });
    assert.equal(seen.length, 3);
    seen.forEach((chunk, i) => assert.equal(chunk, pushed[i], "the very buffer that was pushed"));
  });
  it(
    "fails at once on a source that failed before the tee began, instead of waiting for its events",
    { timeout: 10_000 },
    async () => {
      const failed = new PassThrough();
      failed.on("error", () => {});
      failed.destroy(new Error("the file is truncated"));
      await sleep(1);
      const target = collector().stream.on("error", () => {});
      await assert.rejects(tee(failed, [{ stream: target }]), /the file is truncated/);
      assert.equal(target.destroyed, true);
      const closed = new PassThrough();
      closed.destroy();
      await sleep(1);
      await assert.rejects(
        tee(closed, [{ stream: collector().stream.on("error", () => {}) }]),
        /closed before its end/,
      );
    },
  );
});
