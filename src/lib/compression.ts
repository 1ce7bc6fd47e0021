import { PassThrough, type Transform } from "node:stream";
import zlib from "node:zlib";

/** The compressions a snapshot file may use, and how file names say which. */
export type Compression = "gzip" | "zstd" | "none";

export function compressionForPath(path: string): Compression | undefined {
  const lower = path.toLowerCase();
  if (lower.endsWith(".gz") || lower.endsWith(".tgz")) return "gzip";
  if (lower.endsWith(".zst")) return "zstd";
  if (lower.endsWith(".tar")) return "none";
  return undefined;
}

export function extensionFor(compression: Compression): string {
  return compression === "gzip"
    ? ".snapshot.tar.gz"
    : compression === "zstd"
      ? ".snapshot.tar.zst"
      : ".snapshot.tar";
}

export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return "gzip";
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return "zstd";
  return "none";
}

/**
 * The largest zstd window a reader accepts, as a power of two: 32 MiB. Every level up to --ultra -20
 * fits (zstd -19 uses 8 MiB); --long and -21/-22 use up to 128 MiB, which would take import far past its
 * memory bound, so such frames are refused with the size they ask for.
 */
export const ZSTD_WINDOW_LOG_MAX = 25;

/** Decodes a whole stream, including every member or frame of a multi-member one. */
export function createDecompressor(compression: Compression): Transform {
  if (compression === "gzip") return zlib.createGunzip();
  if (compression === "zstd")
    return zlib.createZstdDecompress({
      params: { [zlib.constants.ZSTD_d_windowLogMax]: ZSTD_WINDOW_LOG_MAX },
    });
  return new PassThrough();
}
