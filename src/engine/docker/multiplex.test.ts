import assert from "node:assert/strict";
import { PassThrough, Readable, Writable } from "node:stream";
import { describe, it } from "node:test";
import { demultiplex } from "./multiplex.ts";

function frame(type: number, payload: string | Buffer): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload) : payload;
  const header = Buffer.alloc(8);
  header[0] = type;
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** A Writable that keeps every chunk written to it. */
class Sink extends Writable {
  readonly chunks: Buffer[] = [];
  constructor(highWaterMark?: number) {
    super(highWaterMark === undefined ? {} : { highWaterMark });
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.chunks.push(chunk);
    callback();
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

const source = (...chunks: Buffer[]) => Readable.from(chunks, { objectMode: false });

async function split(chunks: Buffer[]): Promise<{ out: string; err: string }> {
  const stdout = new Sink();
  const stderr = new Sink();
  await demultiplex(source(...chunks), stdout, stderr);
  return { out: stdout.text(), err: stderr.text() };
}

describe("demultiplex", () => {
  const stream = Buffer.concat([
    frame(1, "hello "),
    frame(2, "oops\n"),
    frame(1, ""),
    frame(1, "world\n"),
    frame(2, ""),
    frame(2, "ünïcode ✓\n"),
  ]);

  it("sends type 1 frames to stdout and type 2 frames to stderr, in order", async () => {
    assert.deepEqual(await split([stream]), { out: "hello world\n", err: "oops\nünïcode ✓\n" });
  });

  it("writes each frame's payload as one chunk, without headers", async () => {
    const stdout = new Sink();
    const stderr = new Sink();
    await demultiplex(source(frame(1, "ab"), frame(1, "cd"), frame(2, "ef")), stdout, stderr);
    assert.deepEqual(
      stdout.chunks.map((c) => c.toString()),
      ["ab", "cd"],
    );
    assert.deepEqual(
      stderr.chunks.map((c) => c.toString()),
      ["ef"],
    );
  });

  it("handles the stream split into two chunks at every byte boundary", async () => {
    for (let cut = 1; cut < stream.length; cut++) {
      assert.deepEqual(
        await split([stream.subarray(0, cut), stream.subarray(cut)]),
        { out: "hello world\n", err: "oops\nünïcode ✓\n" },
        `cut at byte ${cut}`,
      );
    }
  });

  it("handles the stream delivered one byte at a time", async () => {
    const bytes = [...stream].map((b) => Buffer.from([b]));
    assert.deepEqual(await split(bytes), { out: "hello world\n", err: "oops\nünïcode ✓\n" });
  });

  it("handles a stream of only zero-length frames", async () => {
    assert.deepEqual(await split([frame(1, ""), frame(2, ""), frame(1, "")]), { out: "", err: "" });
  });

  it("handles an empty source", async () => {
    assert.deepEqual(await split([]), { out: "", err: "" });
  });

  it("treats a frame type other than 2 (stdin echo) as stdout", async () => {
    assert.deepEqual(await split([frame(0, "zero"), frame(2, "two")]), { out: "zero", err: "two" });
  });

  it("passes a large payload through intact when it arrives in many chunks", async () => {
    const payload = Buffer.alloc(1024 * 1024 + 3);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) % 251;
    const whole = Buffer.concat([frame(1, payload), frame(2, "done")]);
    const chunks: Buffer[] = [];
    for (let i = 0; i < whole.length; i += 65_536) chunks.push(whole.subarray(i, i + 65_536));
    const stdout = new Sink();
    const stderr = new Sink();
    await demultiplex(source(...chunks), stdout, stderr);
    assert.ok(Buffer.concat(stdout.chunks).equals(payload));
    assert.equal(stderr.text(), "done");
  });

  it("waits for drain on a slow output and still delivers everything", async () => {
    const stdout = new PassThrough({ highWaterMark: 4 });
    const stderr = new Sink();
    const received: Buffer[] = [];
    const frames = Array.from({ length: 50 }, (_, i) => frame(1, `line ${i}\n`));
    const done = demultiplex(source(...frames), stdout, stderr);
    // Read slowly: one chunk per macrotask, so writes fill the buffer and back-pressure kicks in.
    const reader = (async () => {
      for await (const chunk of stdout) {
        received.push(chunk as Buffer);
        await new Promise((resolve) => setImmediate(resolve));
      }
    })();
    await done;
    stdout.end();
    await reader;
    assert.equal(
      Buffer.concat(received).toString(),
      Array.from({ length: 50 }, (_, i) => `line ${i}\n`).join(""),
    );
  });
});
