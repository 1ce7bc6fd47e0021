import assert from "node:assert/strict";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { StreamFailure, consumeJsonStream, type StreamMessage } from "./json-stream.ts";

/** A byte stream (as an HTTP response is) delivering exactly these chunks. */
const bytes = (...chunks: (string | Buffer)[]) =>
  Readable.from(
    chunks.map((c) => (typeof c === "string" ? Buffer.from(c) : c)),
    { objectMode: false },
  );

async function collect(
  source: Readable,
  keep?: number,
): Promise<{ seen: StreamMessage[]; returned: StreamMessage[] }> {
  const seen: StreamMessage[] = [];
  const returned = await consumeJsonStream(source, (m) => seen.push(m), keep);
  return { seen, returned };
}

async function failure(source: Readable): Promise<{ error: StreamFailure; seen: StreamMessage[] }> {
  const seen: StreamMessage[] = [];
  try {
    await consumeJsonStream(source, (m) => seen.push(m));
  } catch (error) {
    assert.ok(error instanceof StreamFailure, `expected a StreamFailure, got ${String(error)}`);
    return { error, seen };
  }
  assert.fail("expected consumeJsonStream to reject");
}

describe("consumeJsonStream", () => {
  it("delivers each newline-terminated message in order and returns them", async () => {
    const { seen, returned } = await collect(
      bytes('{"stream":"Step 1/2"}\n{"status":"Pulling","id":"abc"}\n'),
    );
    assert.deepEqual(seen, [{ stream: "Step 1/2" }, { status: "Pulling", id: "abc" }]);
    assert.deepEqual(returned, seen);
  });

  it("joins a message split across chunks", async () => {
    const { seen } = await collect(bytes('{"str', 'eam":"he', 'llo"}', "\n"));
    assert.deepEqual(seen, [{ stream: "hello" }]);
  });

  it("joins a message split inside a multi-byte character", async () => {
    const text = Buffer.from('{"stream":"café ✓"}\n');
    for (let cut = 1; cut < text.length; cut++) {
      const { seen } = await collect(bytes(text.subarray(0, cut), text.subarray(cut)));
      assert.deepEqual(seen, [{ stream: "café ✓" }], `cut at byte ${cut}`);
    }
  });

  it("reads several messages in one chunk and a newline that starts the next chunk", async () => {
    const { seen } = await collect(bytes('{"id":"1"}\n{"id":"2"}\n{"id":"3"}', '\n{"id":"4"}\n'));
    assert.deepEqual(seen, [{ id: "1" }, { id: "2" }, { id: "3" }, { id: "4" }]);
  });

  it("reads a last message that has no trailing newline", async () => {
    const { seen } = await collect(bytes('{"id":"1"}\n{"aux":{"ID":"sha256:abc"}}'));
    assert.deepEqual(seen, [{ id: "1" }, { aux: { ID: "sha256:abc" } }]);
  });

  it("skips blank lines and CRLF endings", async () => {
    const { seen } = await collect(bytes('\n\r\n{"id":"1"}\r\n   \n{"id":"2"}\r\n'));
    assert.deepEqual(seen, [{ id: "1" }, { id: "2" }]);
  });

  it("turns a line that is not JSON into a stream message with a newline", async () => {
    const { seen } = await collect(bytes('plain text output\n{"id":"1"}\n  padded  \n'));
    assert.deepEqual(seen, [{ stream: "plain text output\n" }, { id: "1" }, { stream: "padded\n" }]);
  });

  it("returns nothing for an empty stream", async () => {
    const { seen, returned } = await collect(bytes());
    assert.deepEqual(seen, []);
    assert.deepEqual(returned, []);
  });

  it("keeps only the last `keep` messages", async () => {
    const lines = Array.from({ length: 10 }, (_, i) => `{"id":"${i}"}\n`).join("");
    const { seen, returned } = await collect(bytes(lines), 3);
    assert.equal(seen.length, 10);
    assert.deepEqual(returned, [{ id: "7" }, { id: "8" }, { id: "9" }]);
  });

  it("rejects on an error message with the errorDetail message and the messages before it", async () => {
    const { error, seen } = await failure(
      bytes(
        '{"stream":"Step 1/2 : FROM nope"}\n',
        '{"errorDetail":{"message":"pull access denied for nope"},"error":"pull access denied"}\n',
        '{"stream":"never seen"}\n',
      ),
    );
    assert.equal(error.engineMessage, "pull access denied for nope");
    assert.equal(error.message, "pull access denied for nope");
    assert.deepEqual(error.seen, [{ stream: "Step 1/2 : FROM nope" }]);
    assert.deepEqual(seen, [{ stream: "Step 1/2 : FROM nope" }]);
  });

  it("rejects on an error message without errorDetail with its error text", async () => {
    const { error } = await failure(bytes('{"error":"no space left on device"}\n'));
    assert.equal(error.engineMessage, "no space left on device");
  });

  it("rejects on an errorDetail without an error field", async () => {
    const { error } = await failure(bytes('{"errorDetail":{"message":"bad"}}'));
    assert.equal(error.engineMessage, "bad");
  });

  it("rejects on an errorDetail with no message as an unknown engine error", async () => {
    const { error } = await failure(bytes('{"errorDetail":{}}\n'));
    assert.equal(error.engineMessage, "unknown engine error");
  });

  it("rejects on an error in a trailing message without newline", async () => {
    const { error } = await failure(bytes('{"id":"1"}\n{"error":"late failure"}'));
    assert.equal(error.engineMessage, "late failure");
  });

  it("does not crash on a line of JSON that is not an object", async () => {
    await assert.doesNotReject(consumeJsonStream(bytes('{"id":"1"}\nnull\n{"id":"2"}\n')));
  });
});
