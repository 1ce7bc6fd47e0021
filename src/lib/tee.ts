import { PassThrough, Readable, type Writable } from "node:stream";
import { drainedOrClosed } from "./backpressure.ts";

export interface TeeTarget {
  stream: Writable;
  /**
   * A target that may stop early (an engine refusing a load): once it is destroyed it gets nothing more
   * and the others go on. A required target that stops stops the tee.
   */
  optional?: boolean;
}

export interface TeeOptions {
  /** Sees each chunk before the targets do (a hash, a count). */
  onChunk?: (chunk: Buffer) => void;
  /** What the targets are destroyed with when the source fails (the source's error by default). */
  errorFor?: (error: unknown) => Error;
}

/**
 * Copies `source` to every target at the pace of the slowest (each chunk is written to all, then the tee
 * waits for each that asked it to), and ends them all at the source's end. Chunks are passed as they come,
 * so a target that keeps one past its write must copy it if the source reuses its buffers. When the source
 * fails, every target is destroyed with that error and the returned promise rejects with it.
 */
export async function tee(
  source: AsyncIterable<Buffer>,
  targets: TeeTarget[],
  options: TeeOptions = {},
): Promise<void> {
  try {
    for await (const chunk of chunksOf(source)) {
      options.onChunk?.(chunk);
      const waits: Promise<void>[] = [];
      for (const { stream, optional } of targets) {
        if (stream.destroyed) {
          if (optional) continue;
          throw new Error("a required copy of the stream was closed before its end");
        }
        // An optional target that fails while the tee waits on it is only dropped.
        if (!stream.write(chunk))
          waits.push(optional ? drainedOrClosed(stream).catch(() => {}) : drainedOrClosed(stream));
      }
      await Promise.all(waits);
    }
    for (const { stream } of targets) if (!stream.destroyed) stream.end();
  } catch (error) {
    const reported = options.errorFor ? options.errorFor(error) : (error as Error);
    for (const { stream } of targets) stream.destroy(reported);
    throw reported;
  }
}

/** A copy of `source` as a stream of its own, hashed or counted by `onChunk`; `done` settles at its end. */
export function copyOf(
  source: AsyncIterable<Buffer>,
  onChunk?: (chunk: Buffer) => void,
): { copy: Readable; done: Promise<void> } {
  const copy = new PassThrough({ highWaterMark: 1024 * 1024 });
  const done = tee(source, [{ stream: copy }], { onChunk });
  // Reported through `done` (or the copy's own error, to whoever reads it).
  done.catch(() => {});
  return { copy, done };
}

/**
 * The chunks of a source as they were pushed. A Readable's async iterator reads in paused mode, where each
 * read() joins everything buffered into one new buffer: a copy of every byte, which showed as tens of
 * megabytes of peak memory on an import. In flowing mode the chunks come as they are.
 */
const QUEUE_BYTES = 1024 * 1024;

async function* chunksOf(source: AsyncIterable<Buffer>): AsyncGenerator<Buffer> {
  if (!(source instanceof Readable)) {
    yield* source;
    return;
  }
  // A stream that ended or failed before it was asked for (while the engine was listed, say) sends no
  // more events: say so now rather than wait for them.
  if (source.readableEnded) return;
  if (source.destroyed) throw source.errored ?? new Error("the stream closed before its end");
  const queue: Buffer[] = [];
  let wake: (() => void) | undefined;
  let ended = false;
  let failure: Error | undefined;
  const notify = () => {
    const w = wake;
    wake = undefined;
    w?.();
  };
  let queued = 0;
  const onData = (chunk: Buffer) => {
    queue.push(chunk);
    queued += chunk.length;
    if (queued >= QUEUE_BYTES) source.pause();
    notify();
  };
  const onEnd = () => {
    ended = true;
    notify();
  };
  const onError = (error: Error) => {
    failure = error;
    notify();
  };
  const onClose = () => {
    if (!ended && !failure) failure = new Error("the stream closed before its end");
    notify();
  };
  source.on("data", onData);
  source.on("end", onEnd);
  source.on("error", onError);
  source.on("close", onClose);
  try {
    for (;;) {
      const chunk = queue.shift();
      if (chunk) {
        queued -= chunk.length;
        if (queued < QUEUE_BYTES && source.isPaused()) source.resume();
        yield chunk;
        continue;
      }
      if (failure) throw failure;
      if (ended) return;
      source.resume();
      await new Promise<void>((resolve) => (wake = resolve));
    }
  } finally {
    source.off("data", onData);
    source.off("end", onEnd);
    source.off("error", onError);
    source.off("close", onClose);
    if (!ended) source.destroy();
  }
}
