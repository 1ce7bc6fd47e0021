import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { open, unlink } from "node:fs/promises";
import { ChunkedCompressor, storedBlock, storedBlockSize, type Compression } from "../lib/codec.ts";
import type { Sink } from "../lib/sink.ts";
import { spoolPathIn } from "../lib/atomic.ts";
import { BLOCK, END_OF_ARCHIVE, encodeHeader, padding } from "../lib/tar-header.ts";

export interface EntryDigest {
  path: string;
  size: number;
  sha256: string;
}

/**
 * Writes a compressed tar, entry by entry, straight to its sink. An entry whose size is unknown until it
 * has streamed (an image from the engine) gets its header's place reserved as an uncompressed member or
 * frame of fixed size, filled in with the real header afterwards; on a sink that cannot seek it is spooled
 * to `spoolDir` first.
 */
export class ArchiveWriter {
  private readonly sink: Sink;
  private readonly compression: Compression;
  private readonly compressor: ChunkedCompressor;
  private readonly spoolDir: string | undefined;
  readonly entries: EntryDigest[] = [];

  constructor(options: { sink: Sink; compression: Compression; level?: number; spoolDir?: string }) {
    this.sink = options.sink;
    this.compression = options.compression;
    this.spoolDir = options.spoolDir;
    this.compressor = new ChunkedCompressor({
      compression: options.compression,
      ...(options.level !== undefined ? { level: options.level } : {}),
      write: async (parts) => {
        for (const part of parts) await this.sink.write(part);
      },
    });
  }

  get bytesOut(): number {
    return this.sink.position;
  }

  async addBuffer(path: string, data: Buffer, mtime = new Date()): Promise<EntryDigest> {
    await this.compressor.push(encodeHeader({ name: path, size: data.length, mtime }));
    await this.compressor.push(data);
    await this.compressor.push(padding(data.length));
    return this.record({ path, size: data.length, sha256: sha256(data) });
  }

  /** Streams an entry of unknown size; `onBytes` is told of each chunk as it passes. */
  async addStream(
    path: string,
    source: AsyncIterable<Buffer>,
    onBytes: (n: number) => void = () => {},
  ): Promise<EntryDigest> {
    if (!this.sink.seekable) return this.addSpooled(path, source, onBytes);
    await this.compressor.flush();
    const headerAt = this.sink.position;
    const headerSize = storedBlockSize(this.compression, BLOCK);
    this.sink.hold?.(headerAt, headerSize);
    await this.sink.write(Buffer.alloc(headerSize));
    const { size, sha256: digest } = await passThrough(source, onBytes, (chunk) =>
      this.compressor.push(chunk),
    );
    await this.compressor.push(padding(size));
    await this.sink.writeAt(
      storedBlock(this.compression, encodeHeader({ name: path, size, mtime: new Date() })),
      headerAt,
    );
    return this.record({ path, size, sha256: digest });
  }

  private async addSpooled(
    path: string,
    source: AsyncIterable<Buffer>,
    onBytes: (n: number) => void,
  ): Promise<EntryDigest> {
    const spool = spoolPathIn(this.spoolDir ?? ".");
    const handle = await open(spool, "wx", 0o600);
    try {
      const { size, sha256: digest } = await passThrough(source, onBytes, async (chunk) => {
        await handle.write(chunk);
      });
      await handle.close();
      await this.compressor.push(encodeHeader({ name: path, size, mtime: new Date() }));
      for await (const chunk of createReadStream(spool, { highWaterMark: 1024 * 1024 }))
        await this.compressor.push(chunk as Buffer);
      await this.compressor.push(padding(size));
      return this.record({ path, size, sha256: digest });
    } finally {
      await handle.close().catch(() => {});
      await unlink(spool).catch(() => {});
    }
  }

  async finish(): Promise<void> {
    await this.compressor.push(END_OF_ARCHIVE);
    await this.compressor.end();
  }

  private record(entry: EntryDigest): EntryDigest {
    this.entries.push(entry);
    return entry;
  }
}

/** Hands each chunk of `source` to `write`, counting and hashing what passes. */
async function passThrough(
  source: AsyncIterable<Buffer>,
  onBytes: (n: number) => void,
  write: (chunk: Buffer) => Promise<void>,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of source) {
    hash.update(chunk);
    size += chunk.length;
    onBytes(chunk.length);
    await write(chunk);
  }
  return { size, sha256: hash.digest("hex") };
}

export function sha256(data: Buffer | string): string {
  return createHash("sha256").update(data).digest("hex");
}
