import type { Readable } from "node:stream";
import { readSnapshotArchive, type ArchiveContents } from "./archive-reader.ts";
import type { Manifest } from "./format.ts";
import { counting, openInput, settled, type Input, type RemoteOptions } from "./input.ts";
import { ImageGuard } from "./image-guard.ts";
import { checkLegacy, type ImageIdentity, type LegacyChecked, type LegacyRead } from "./legacy-format.ts";
import { decodeError } from "./archive-decode.ts";
import { drain, legacyEntries } from "./legacy-reader.ts";
import { ImageVerifier, verifyContents } from "./verify.ts";

export type VerifiedFile =
  | ArchiveContents
  | { kind: "vm3"; compression: string; read: LegacyRead; checked: LegacyChecked; identity: ImageIdentity };

/**
 * `vm snapshot verify FILE`: every digest in the file checked, without an engine; a vm 3.x file as far
 * as it allows (its image's own content addresses and the image ID its metadata records).
 */
export async function verifyArchiveFile(
  input: string,
  cwd: string,
  onBytes: (n: number) => void,
  stdin: Readable,
  /** Pass one to learn the image's parts afterwards (ImageVerifier.parts). */
  verifier: ImageVerifier = new ImageVerifier(),
  remote: RemoteOptions = {},
): Promise<VerifiedFile> {
  const source = await openInput(input, cwd, stdin, remote);
  return settled(source, () => verifySource(source, onBytes, verifier));
}

async function verifySource(
  source: Input,
  onBytes: (n: number) => void,
  verifier: ImageVerifier,
): Promise<VerifiedFile> {
  // The checks an import makes before the engine sees the image: no names, nothing docker save never
  // writes. vm 3.x saved its images by tag: their names are expected, and an import takes them out.
  let guard = new ImageGuard("refuse");
  let refused: unknown;
  /** The image through the verifier and the guard; the guard's complaint is reported after the digests. */
  const checkImage = async (image: Readable): Promise<void> => {
    image.pipe(verifier.input);
    image.on("data", (chunk: Buffer) => {
      if (refused !== undefined) return;
      try {
        guard.push(chunk);
      } catch (error) {
        refused = error;
      }
    });
    await new Promise<void>((resolve, reject) => {
      image.once("end", resolve);
      image.once("error", (error) => {
        const decoded = decodeError(error);
        reject(decoded instanceof Error ? decoded : error);
      });
    });
  };
  const contents = await readSnapshotArchive(
    counting(source.stream, onBytes),
    {
      onImage: async (image) => {
        await checkImage(image);
        return "consumed";
      },
    },
    (first, rest) => {
      guard = new ImageGuard("strip");
      return legacyEntries({ onImage: checkImage, onVolume: (_name, archive) => drain(archive) })(
        first,
        rest,
      );
    },
  );
  if (contents.kind === "vm") verifyContents(contents);
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- the guard's VmError, after the digests
  if (refused !== undefined) throw refused;
  if (contents.kind === "vm3") {
    if (contents.result.image) guard.finish();
    const identity = contents.result.image ? await verifier.identity() : undefined;
    const checked = checkLegacy(contents.result, identity);
    return {
      kind: "vm3",
      compression: contents.compression,
      read: contents.result,
      checked,
      identity: identity!,
    };
  }
  guard.finish();
  await verifier.result(contents.manifest);
  return contents;
}

/**
 * `vm snapshot inspect FILE`: the manifest, read from the head of the file only; for a vm 3.x file (whose
 * entries come in no fixed order) until both its documents have passed.
 */
export async function readManifestOnly(
  input: string,
  cwd: string,
  stdin: Readable,
  remote: RemoteOptions = {},
): Promise<{ manifest: Manifest; compression: string } | { legacy: LegacyRead; compression: string }> {
  const source = await openInput(input, cwd, stdin, remote);
  const contents = await settled(source, () =>
    readSnapshotArchive(
      source.stream,
      { onImage: async () => "skip" },
      legacyEntries({ onImage: drain, onVolume: (_name, archive) => drain(archive) }),
    ),
  );
  if (contents.kind === "vm3") return { legacy: contents.result, compression: contents.compression };
  return { manifest: contents.manifest, compression: contents.compression };
}
