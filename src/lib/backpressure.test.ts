import assert from "node:assert/strict";
import { PassThrough } from "node:stream";
import { describe, it } from "node:test";
import { drainedOrClosed } from "./backpressure.ts";

const listeners = (s: PassThrough) => ["drain", "close", "error"].map((e) => s.listenerCount(e));

describe("drainedOrClosed", () => {
  it("leaves no listener behind however many times the stream pushes back", async () => {
    const stream = new PassThrough({ highWaterMark: 4 });
    const before = listeners(stream);
    for (let i = 0; i < 50; i++) {
      assert.equal(stream.write(Buffer.alloc(16)), false);
      const waiting = drainedOrClosed(stream);
      stream.read();
      await waiting;
    }
    assert.deepEqual(listeners(stream), before);
  });

  it("settles when the stream closes instead of draining", async () => {
    const stream = new PassThrough({ highWaterMark: 4 });
    stream.write(Buffer.alloc(16));
    const waiting = drainedOrClosed(stream);
    stream.destroy();
    await waiting;
    assert.equal(stream.listenerCount("drain"), 0);
  });

  it("rejects when the stream errors first", async () => {
    const stream = new PassThrough({ highWaterMark: 4 });
    stream.write(Buffer.alloc(16));
    const waiting = drainedOrClosed(stream);
    stream.destroy(new Error("engine went away"));
    await assert.rejects(waiting, /engine went away/);
  });
});
