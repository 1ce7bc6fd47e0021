import type { Readable, Transform } from "node:stream";
import type { Compression } from "../lib/codec.ts";
import type { VmError } from "../errors.ts";
import { invalidArchive, type Manifest } from "./format.ts";

/** Decompressed bytes may outnumber compressed ones at most this much (beyond the first 256 MiB). */
export const MAX_EXPANSION = 500;
const EXPANSION_FLOOR = 256 * 1024 * 1024;
/** Room beyond twice the image's size for the documents, tar headers and the end of the archive. */
const MANIFEST_SLACK = 512 * 1024 * 1024;

/**
 * Checks the bytes no digest covers, as they pass: nothing may follow the compressed data (zlib would
 * silently drop it); the tar's own framing (padding, what follows its end) is checked by the strict walker
 * that reads the entries (lib/tar-entries.ts). And it watches for a decompression bomb: the output may
 * not pass twice the image size the manifest records (plus room for the rest; a file with volumes has no
 * such bound, their size is not recorded), and past its first 256 MiB it may not outgrow MAX_EXPANSION
 * times the compressed bytes read, whatever the manifest claims.
 */
export function streamGuard(
  input: Readable,
  decompressor: Transform,
  compression: Compression,
  manifest: () => Manifest | undefined,
): { failure: VmError | undefined; checkEnd: () => void } {
  const state = { failure: undefined as VmError | undefined, checkEnd: () => {} };
  const fail = (error: VmError) => {
    state.failure ??= error;
    decompressor.destroy(state.failure);
  };
  let read = 0;
  let expanded = 0;
  // Any standard gzip or zstd framing is accepted (a file decompressed and compressed again with gzip -9,
  // Python's gzip or zstd --no-check is the same snapshot): what is hashed is the decoder's output, and
  // the framing cannot change it. docs/security.md lists those bytes and why that is safe.
  input.on("data", (chunk: Buffer) => {
    read += chunk.length;
  });
  decompressor.on("data", (chunk: Buffer) => {
    if (state.failure) return;
    expanded += chunk.length;
    if (compression === "none") return;
    const m = manifest();
    const bound = m && !m.volumes?.length ? m.size_bytes * 2 + MANIFEST_SLACK : Infinity;
    let why: string | undefined;
    if (expanded > bound) why = `past twice the ${m?.size_bytes}-byte image its manifest describes`;
    else if (expanded > EXPANSION_FLOOR && expanded > read * MAX_EXPANSION)
      why = `more than ${MAX_EXPANSION} times the compressed size`;
    if (why === undefined) return;
    fail(
      invalidArchive(
        `The snapshot file expands to more than ${expanded} bytes from ${read} compressed bytes, ${why}: it looks like a decompression bomb`,
        "Do not import this file; get the snapshot from its source again",
      ),
    );
  });
  state.checkEnd = () => {
    if (compression === "none") return;
    const used = (decompressor as Transform & { bytesWritten: number }).bytesWritten;
    if (used < read)
      throw invalidArchive(
        `${read - used} bytes follow the end of the compressed data; a snapshot file ends where its archive ends`,
      );
  };
  return state;
}
