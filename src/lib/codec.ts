import { availableParallelism } from "node:os";
import zlib from "node:zlib";
import { VmError } from "../errors.ts";

import type { Compression } from "./compression.ts";
export type { Compression } from "./compression.ts";
export {
  compressionForPath,
  createDecompressor,
  detectCompression,
  extensionFor,
  ZSTD_WINDOW_LOG_MAX,
} from "./compression.ts";

const defaultChunkSize: Record<Compression, number> = { gzip: 1 << 20, zstd: 2 << 20, none: 1 << 20 };
const levels = { gzip: { min: 1, max: 9, default: 6 }, zstd: { min: 1, max: 19, default: 3 } };

/** Compresses one chunk into one independent gzip member or zstd frame, as one or more buffers. */
interface Compress {
  (chunk: Buffer): Promise<Buffer[]>;
  /** Frees what the compressor keeps between chunks. */
  close(): void;
}

function compressorFor(compression: Compression, level: number | undefined): Compress {
  if (compression === "none") return Object.assign(async (chunk: Buffer) => [chunk], { close: () => {} });
  const range = levels[compression];
  const chosen = level ?? range.default;
  if (!Number.isInteger(chosen) || chosen < range.min || chosen > range.max) {
    throw new VmError("COMPRESSION_LEVEL_INVALID", `${compression} level ${chosen} is not supported`, {
      hint: `Use a whole number from ${range.min} to ${range.max}.`,
    });
  }
  const failed = (error: Error) => {
    const message = `${compression} compression failed: ${error.message}`;
    return new VmError("COMPRESSION_FAILED", message, { cause: error });
  };
  // zlib's default 16 KiB output buffers mean hundreds of round trips to the main thread per chunk (a third
  // of its time); 1 MiB ones stayed alive while any small piece of them waited to be written, about 10 MB
  // of an export's peak. 256 KiB: a few round trips per chunk, and little held for the pieces.
  const chunkSize = 256 * 1024;
  // A few long-lived streams, each ending a member or frame per chunk (Z_FINISH then a reset, or
  // ZSTD_e_end), instead of a stream per chunk: creating and freeing a compression context for every chunk
  // cost time and left the allocator holding tens of megabytes. zstd frames carry a checksum, as the zstd
  // CLI writes them, so `zstd -t` can check a file on its own.
  const { ZSTD_c_compressionLevel, ZSTD_c_checksumFlag, ZSTD_e_end, Z_FINISH } = zlib.constants;
  const create =
    compression === "gzip"
      ? () => zlib.createGzip({ level: chosen, chunkSize })
      : () =>
          zlib.createZstdCompress({
            chunkSize,
            params: { [ZSTD_c_compressionLevel]: chosen, [ZSTD_c_checksumFlag]: 1 },
          });
  const idle: (zlib.Gzip | zlib.ZstdCompress)[] = [];
  const all = new Set<zlib.Gzip | zlib.ZstdCompress>();
  const compress = (chunk: Buffer) =>
    new Promise<Buffer[]>((resolve, reject) => {
      let stream = idle.pop();
      if (stream === undefined) {
        stream = create();
        all.add(stream);
      }
      const s = stream;
      const parts: Buffer[] = [];
      const onData = (data: Buffer) => parts.push(data);
      const onError = (error: Error) => {
        s.off("data", onData);
        all.delete(s);
        s.destroy();
        reject(failed(error));
      };
      s.on("data", onData);
      s.once("error", onError);
      s.write(chunk);
      s.flush(compression === "gzip" ? Z_FINISH : ZSTD_e_end, () => {
        s.off("data", onData);
        s.off("error", onError);
        if (s.destroyed) return;
        if (compression === "gzip") {
          (s as zlib.Gzip & { reset(): void }).reset();
          // zlib marks levels 1 and 9 in the header's XFL byte; vm always writes 0, so that a reader can
          // require the exact header it expects.
          if (parts[0] && parts[0].length > 8) parts[0][8] = 0;
        }
        idle.push(s);
        resolve(parts);
      });
    });
  return Object.assign(compress, {
    close: () => {
      for (const s of all) s.destroy();
      all.clear();
      idle.length = 0;
    },
  });
}

/**
 * Compresses on several cores the way pigz does: the input is cut into chunks, each chunk becomes an
 * independent gzip member or zstd frame compressed on libuv's threadpool, and the results are written in
 * input order. Await each call before making the next.
 */
export class ChunkedCompressor {
  readonly #compression: Compression;
  readonly #compress: Compress;
  readonly #write: (compressed: Buffer[]) => Promise<void>;
  readonly #chunkSize: number;
  readonly #concurrency: number;
  #fill: Buffer;
  readonly #spare: Buffer[] = [];
  #filled = 0;
  /** One entry per chunk handed to zlib and not yet written; each settles (never rejects) once written. */
  readonly #inFlight: Promise<void>[] = [];
  #tail: Promise<void> = Promise.resolve();
  #chunks = 0;
  #bytesIn = 0;
  #bytesOut = 0;
  #failure: { error: unknown } | undefined;
  #busy = false;
  #ended = false;

  constructor(options: {
    compression: Compression;
    level?: number;
    chunkSize?: number;
    concurrency?: number;
    /** Called once per member or frame, in input order, with its bytes in one or more parts. */
    write: (compressed: Buffer[]) => Promise<void>;
  }) {
    this.#compression = options.compression;
    this.#compress = compressorFor(options.compression, options.level);
    this.#write = options.write;
    this.#chunkSize = options.chunkSize ?? defaultChunkSize[options.compression];
    this.#concurrency = options.concurrency ?? Math.max(2, availableParallelism());
    if (!(this.#chunkSize >= 1) || !(this.#concurrency >= 1))
      throw new Error("chunkSize and concurrency must be >= 1");
    this.#fill = Buffer.allocUnsafe(this.#chunkSize);
  }

  get bytesIn(): number {
    return this.#bytesIn;
  }

  get bytesOut(): number {
    return this.#bytesOut;
  }

  /** Adds uncompressed bytes (copied, so the caller may reuse `data`). Resolves when more may be pushed. */
  push(data: Uint8Array): Promise<void> {
    return this.#exclusive(async () => {
      if (this.#ended) throw new Error("ChunkedCompressor.push after end()");
      let offset = 0;
      while (offset < data.length) {
        const n = Math.min(this.#chunkSize - this.#filled, data.length - offset);
        this.#fill.set(data.subarray(offset, offset + n), this.#filled);
        this.#filled += n;
        offset += n;
        this.#bytesIn += n;
        if (this.#filled === this.#chunkSize) await this.#dispatch();
      }
    });
  }

  /** Compresses what is pending and waits until all of it is written; the next write starts a new member. */
  flush(): Promise<void> {
    return this.#exclusive(() => this.#drain(false));
  }

  /** flush(), then no more push. */
  end(): Promise<void> {
    return this.#exclusive(async () => {
      this.#ended = true;
      try {
        await this.#drain(true);
      } finally {
        this.#compress.close();
      }
    });
  }

  async #exclusive(body: () => Promise<void>): Promise<void> {
    if (this.#busy) throw new Error("ChunkedCompressor: await each call before making the next");
    this.#busy = true;
    try {
      this.#throwIfFailed();
      await body();
      this.#throwIfFailed();
    } finally {
      this.#busy = false;
    }
  }

  async #drain(final: boolean): Promise<void> {
    // An empty file is not a valid gzip or zstd stream, so an archive with no bytes still gets one member.
    const emptyStream = final && this.#chunks === 0 && this.#compression !== "none";
    if (this.#filled > 0 || emptyStream) await this.#dispatch();
    await this.#tail;
  }

  async #dispatch(): Promise<void> {
    while (this.#inFlight.length >= this.#concurrency) await this.#inFlight[0];
    this.#throwIfFailed();
    const input = this.#fill;
    const compressed = this.#compress(input.subarray(0, this.#filled));
    // Reusing input buffers spares page-faulting in a fresh chunk each time and the garbage of a chunk per
    // chunk. "none" hands the input itself to write, so it is reused once written (a sink is done with
    // a buffer when its write resolves). The rejection handler also keeps a rejection that arrives before
    // the write chain awaits it from counting as unhandled.
    const recycle = () => void this.#spare.push(input);
    if (this.#compression !== "none") compressed.then(recycle, recycle);
    this.#fill = this.#spare.pop() ?? Buffer.allocUnsafe(this.#chunkSize);
    this.#filled = 0;
    this.#chunks++;
    const written = this.#tail.then(async () => {
      try {
        const parts = await compressed;
        if (this.#failure !== undefined) return;
        // The parts of one member or frame, as zlib produced them: joining them would cost a copy (and its
        // garbage) per chunk.
        await this.#write(parts);
        for (const part of parts) this.#bytesOut += part.length;
      } catch (error) {
        this.#failure ??= { error };
      } finally {
        void this.#inFlight.shift();
      }
    });
    if (this.#compression === "none") void written.then(recycle);
    this.#inFlight.push(written);
    this.#tail = written;
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure.error;
  }
}

const MAX_STORED = 0xffff;

/** Bytes that storedBlock(compression, data) produces for n bytes of data. */
export function storedBlockSize(compression: Compression, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n > MAX_STORED) throw new Error(`stored block of ${n} bytes`);
  if (compression === "gzip") return 10 + 5 + n + 8;
  // magic 4 + frame header descriptor 1 + content size 1 or 2 + block header 3
  if (compression === "zstd") return (n < 256 ? 9 : 10) + n;
  return n;
}

/**
 * Wraps `data` in a gzip member or zstd frame that stores it uncompressed, so its encoded size depends
 * only on data.length: a writer can reserve the space and fill it in later.
 */
export function storedBlock(compression: Compression, data: Buffer): Buffer {
  const n = data.length;
  const out = Buffer.alloc(storedBlockSize(compression, n));
  if (compression === "none") {
    data.copy(out);
  } else if (compression === "gzip") {
    out.set([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3]); // deflate, no flags, no mtime, OS unix
    out[10] = 0x01; // BFINAL=1, BTYPE=00 (stored); the rest of the byte is padding
    out.writeUInt16LE(n, 11);
    out.writeUInt16LE(~n & 0xffff, 13);
    data.copy(out, 15);
    out.writeUInt32LE(zlib.crc32(data), 15 + n);
    out.writeUInt32LE(n, 19 + n);
  } else {
    out.writeUInt32LE(0xfd2fb528, 0);
    // Single_Segment (window = content size, no window descriptor), no checksum, no dictionary.
    // Frame_Content_Size_flag 0 means a 1-byte size; 1 means 2 bytes holding size - 256.
    let at = 5;
    if (n < 256) {
      out[4] = 0x20;
      out[at++] = n;
    } else {
      out[4] = 0x60;
      out.writeUInt16LE(n - 256, at);
      at += 2;
    }
    out.writeUIntLE((n << 3) | 1, at, 3); // Block_Size, Block_Type 0 (Raw), Last_Block
    data.copy(out, at + 3);
  }
  return out;
}
