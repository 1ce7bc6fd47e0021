import { Readable, Writable } from "node:stream";
import { TarWalker, type TarEntry } from "./tar-walk.ts";

/** One entry of a tar being read: its header, and its data as a stream that must be read (or destroyed). */
export interface TarEntryStream extends Readable {
  header: TarEntry;
}

/**
 * A tar read as a sequence of entries, each a stream of its data, on the synchronous TarWalker (strict:
 * padding and what follows the end must be zeros), so that the one parse that checks the framing is also
 * the one that hands the entries over. Write the tar into `input`; take the entries from `entries`, one at
 * a time: the next comes once the current one's data has been read. Backpressure runs from each entry's
 * reader back to whoever writes `input`. The entries' data are views of the chunks written, which must not
 * be reused (decompressor output and file reads are fresh buffers). `framingError` makes the error a
 * damaged tar is reported with.
 */
export function tarEntries(framingError: (error: Error) => Error = (error) => error): {
  input: Writable;
  entries: AsyncIterator<TarEntryStream>;
} {
  // One reader takes the entries one at a time: at most one next() waits.
  let waiting:
    { resolve: (result: IteratorResult<TarEntryStream>) => void; reject: (error: Error) => void } | undefined;
  const ready: TarEntryStream[] = [];
  let finished = false;
  let failure: Error | undefined;

  const deliver = (entry: TarEntryStream | undefined) => {
    const next = waiting;
    waiting = undefined;
    if (next) next.resolve(entry ? { value: entry, done: false } : { value: undefined, done: true });
    else if (entry) ready.push(entry);
  };
  const fail = (error: Error) => {
    failure ??= error;
    const next = waiting;
    waiting = undefined;
    next?.reject(failure);
  };

  let current: EntryStream | undefined;
  const walker = new TarWalker(
    (header) => {
      const entry = new EntryStream(header);
      // A damaged tar destroys the entry being read with the reason, which its reader sees; an entry
      // nobody reads (refused from its header) must not turn that into an uncaught error.
      entry.on("error", () => {});
      current = entry;
      deliver(entry);
      return {
        data: (chunk) => entry.offer(chunk),
        end: () => {
          entry.push(null);
          current = undefined;
        },
      };
    },
    { strict: true },
  );

  const input = new Writable({
    highWaterMark: 1024 * 1024,
    write(chunk: Buffer, _encoding, callback) {
      const waits: Promise<void>[] = [];
      try {
        walker.push(chunk, waits);
      } catch (error) {
        callback(framingError(error as Error));
        return;
      }
      if (waits.length === 0) callback();
      else Promise.all(waits).then(() => callback(), callback);
    },
    final(callback) {
      // Destroyed by the reader (it stopped early) while a write waited: nothing more to check.
      if (this.destroyed) {
        callback();
        return;
      }
      try {
        walker.finish();
        callback();
      } catch (error) {
        callback(framingError(error as Error));
      }
    },
    destroy(error, callback) {
      current?.destroy(error ?? undefined);
      callback(error);
    },
  });
  input.on("error", (error) => fail(error));
  input.on("finish", () => {
    finished = true;
    deliver(undefined);
  });

  const entries: AsyncIterator<TarEntryStream> = {
    next() {
      const entry = ready.shift();
      if (entry) return Promise.resolve({ value: entry, done: false });
      if (failure) return Promise.reject(failure);
      if (finished || walker.ended) {
        finished = true;
        return Promise.resolve({ value: undefined, done: true });
      }
      return new Promise((resolve, reject) => (waiting = { resolve, reject }));
    },
    return() {
      finished = true;
      ready.length = 0;
      input.destroy();
      return Promise.resolve({ value: undefined, done: true });
    },
  };
  return { input, entries };
}

class EntryStream extends Readable implements TarEntryStream {
  readonly header: TarEntry;
  #wake: (() => void) | undefined;

  constructor(header: TarEntry) {
    super({ highWaterMark: 1024 * 1024 });
    this.header = header;
  }

  /** Hands on a chunk; a promise when the reader wants no more for now. */
  offer(chunk: Buffer): Promise<void> | void {
    if (this.destroyed) return;
    if (this.push(chunk)) return;
    return new Promise((resolve) => (this.#wake = resolve));
  }

  override _read(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this._read();
    callback(error);
  }
}
