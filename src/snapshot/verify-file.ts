import { PassThrough } from "node:stream";
import { readSnapshotArchive, type ArchiveContents } from "./archive-reader.ts";
import type { Manifest } from "./format.ts";
import { counting, openInput } from "./input.ts";
import { ImageVerifier, verifyContents } from "./verify.ts";

/** `vm snapshot verify FILE`: every digest in the file checked, without an engine. */
export async function verifyArchiveFile(
  input: string,
  cwd: string,
  onBytes: (n: number) => void,
  stdin = new PassThrough(),
): Promise<ArchiveContents> {
  const source = await openInput(input, cwd, stdin);
  const verifier = new ImageVerifier();
  const contents = await readSnapshotArchive(counting(source.stream, onBytes), {
    onImage: async (image) => {
      image.pipe(verifier.input);
      await new Promise<void>((resolve, reject) => {
        image.once("end", resolve);
        image.once("error", reject);
      });
      return "consumed";
    },
  });
  verifyContents(contents);
  await verifier.result(contents.manifest);
  return contents;
}

/** `vm snapshot inspect FILE`: the manifest, read from the head of the file only. */
export async function readManifestOnly(
  input: string,
  cwd: string,
  stdin: PassThrough | NodeJS.ReadableStream,
): Promise<{ manifest: Manifest; compression: string }> {
  const source = await openInput(input, cwd, stdin as never);
  const contents = await readSnapshotArchive(source.stream, { onImage: async () => "skip" });
  return { manifest: contents.manifest, compression: contents.compression };
}
