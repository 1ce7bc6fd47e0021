/**
 * `vm snapshot scan`: the export's secret scan on demand, over a registered snapshot (its image as the
 * engine saves it) or a snapshot file (its image entries, decompressed as they stream past), writing
 * nothing. One pass, the same scanner the export tees its save stream into.
 */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createDecompressor, detectCompression, type Compression } from "../../lib/compression.ts";
import type { Services } from "../../env/services.ts";
import { VmError } from "../../errors.ts";
import { describeRef } from "../../snapshot-file/names.ts";
import { findSnapshotImage } from "../../store/resolve.ts";
import { SecretScanner, type SecretFinding } from "../../secret-scan/secrets.ts";
import { openInput } from "../../snapshot-file/input.ts";
import { TarWalker } from "../../lib/tar-walk.ts";

export interface ScanResult {
  /** `@name`, or the file's path ("-": standard input). */
  target: string;
  findings: SecretFinding[];
  skippedLayers: number;
}

export async function scanSnapshot(
  services: Services,
  options: { name: string; project: string | undefined },
): Promise<ScanResult> {
  const { ref, metadata } = await findSnapshotImage(
    services.engine,
    services.snapshots,
    options.name,
    options.project,
    services.log,
  );
  const scanner = new SecretScanner();
  const save = await services.engine.images.save(metadata.engine_image_id);
  for await (const _chunk of scanned(save, scanner)); // only the scanner reads the image
  return { target: describeRef(ref), findings: await scanner.result(), skippedLayers: scanner.skippedLayers };
}

/** Yields the source's chunks after the scanner has seen each (waiting when it asks to), then ends the
 * scan: the export's tee of its save stream, and the whole read of `vm snapshot scan NAME`. */
export async function* scanned(
  source: AsyncIterable<Buffer>,
  scanner: SecretScanner,
): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of source) {
      const wait = scanner.push(chunk);
      if (wait) await wait;
      yield chunk;
    }
    scanner.end();
  } catch (error) {
    scanner.abort(error as Error);
    throw error;
  }
}

/** A snapshot file's images (`images/*.tar`: ours and vm 3.x's), without an engine. */
export async function scanFile(input: string, cwd: string, stdin: Readable): Promise<ScanResult> {
  const { stream, path } = await openInput(input, cwd, stdin);
  const shown = path === "-" ? "standard input" : path;
  const scanner = new SecretScanner();
  let images = 0;
  const outer = new TarWalker((entry) => {
    if (entry.type !== "file" || !/^images\/[^/]+\.tar$/.test(entry.name)) return undefined;
    images += 1;
    return { data: (chunk) => scanner.push(chunk), end: () => {} };
  });
  const walk = async (source: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of source) {
      const waits: Promise<void>[] = [];
      outer.push(chunk, waits);
      if (waits.length > 0) await Promise.all(waits);
    }
    outer.finish();
  };
  try {
    const { compression, bytes } = await peek(stream);
    if (compression === "none") await pipeline(bytes, walk);
    else await pipeline(bytes, createDecompressor(compression), walk);
    scanner.end();
  } catch (error) {
    scanner.abort(error as Error);
    throw new VmError(
      "SCAN_UNREADABLE",
      `${shown} cannot be read as a snapshot file: ${(error as Error).message}`,
      {
        hint: `Check it with: vm snapshot verify ${input}`,
        cause: error,
      },
    );
  }
  if (images === 0)
    throw new VmError("SCAN_NO_IMAGE", `${shown} holds no image to scan`, {
      hint: `Is it a snapshot file? vm snapshot inspect ${input} shows what it holds`,
    });
  return { target: path, findings: await scanner.result(), skippedLayers: scanner.skippedLayers };
}

/** The stream's compression, from its first chunk, and the stream again with that chunk in front. */
async function peek(stream: Readable): Promise<{ compression: Compression; bytes: Readable }> {
  const chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const first = await chunks.next();
  const head = first.done ? Buffer.alloc(0) : first.value;
  async function* again(): AsyncGenerator<Buffer> {
    yield head;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
  }
  return { compression: detectCompression(head), bytes: Readable.from(again()) };
}
