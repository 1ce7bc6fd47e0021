import { ENTRY, FORMAT_VERSION, type Checksums } from "./format.ts";
import { signChecksums, type Signer } from "./signing.ts";
import { sha256, type ArchiveWriter } from "./writer.ts";

/**
 * Ends a snapshot file: checksums.json over manifest.json and every entry written so far, then, with a
 * signer, signature.json over checksums.json, then the end of the archive. Export and the format's tests
 * both end their files here, so a file they write is the same file.
 */
export async function writeTrailer(
  writer: ArchiveWriter,
  manifestBytes: Buffer,
  signer: Signer | undefined,
): Promise<void> {
  const checksums: Checksums = {
    version: FORMAT_VERSION,
    manifest_sha256: sha256(manifestBytes),
    entries: writer.entries.slice(),
  };
  const checksumsBytes = Buffer.from(JSON.stringify(checksums, null, 2) + "\n");
  await writer.addBuffer(ENTRY.checksums, checksumsBytes);
  if (signer) {
    const signature = signChecksums(signer, checksumsBytes);
    await writer.addBuffer(ENTRY.signature, Buffer.from(JSON.stringify(signature, null, 2) + "\n"));
  }
  await writer.finish();
}
