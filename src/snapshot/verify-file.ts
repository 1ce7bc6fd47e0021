import type { Readable } from "node:stream";
import { readSnapshotArchive, type ArchiveContents } from "./archive-reader.ts";
import type { Manifest } from "./format.ts";
import { counting, openInput } from "./input.ts";
import { ImageGuard } from "./image-guard.ts";
import { ImageVerifier, verifyContents } from "./verify.ts";

/** `vm snapshot verify FILE`: every digest in the file checked, without an engine. */
export async function verifyArchiveFile(
  input: string,
  cwd: string,
  onBytes: (n: number) => void,
  stdin: Readable,
): Promise<ArchiveContents> {
  const source = await openInput(input, cwd, stdin);
  const verifier = new ImageVerifier();
  // The checks an import makes before the engine sees the image: no names, nothing docker save never writes.
  const guard = new ImageGuard("refuse");
  let refused: unknown;
  const guarded = (chunk: Buffer) => {
    if (refused !== undefined) return;
    try {
      guard.push(chunk);
    } catch (error) {
      refused = error;
    }
  };
  const contents = await readSnapshotArchive(counting(source.stream, onBytes), {
    onImage: async (image) => {
      image.pipe(verifier.input);
      image.on("data", guarded);
      await new Promise<void>((resolve, reject) => {
        image.once("end", resolve);
        image.once("error", reject);
      });
      return "consumed";
    },
  });
  verifyContents(contents);
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- the guard's VmError, after the digests
  if (refused !== undefined) throw refused;
  guard.finish();
  await verifier.result(contents.manifest);
  return contents;
}

/** `vm snapshot inspect FILE`: the manifest, read from the head of the file only. */
export async function readManifestOnly(
  input: string,
  cwd: string,
  stdin: Readable,
): Promise<{ manifest: Manifest; compression: string }> {
  const source = await openInput(input, cwd, stdin);
  const contents = await readSnapshotArchive(source.stream, { onImage: async () => "skip" });
  return { manifest: contents.manifest, compression: contents.compression };
}
