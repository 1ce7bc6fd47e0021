import { createHash } from "node:crypto";
import { once } from "node:events";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createDecompressor, type Compression } from "../lib/codec.ts";
import { copyOf } from "../lib/tee.ts";
import { tarEntries, type TarEntryStream } from "../lib/tar-entries.ts";
import type { TarEntry } from "../lib/tar-walk.ts";
import { decodeError, sniff } from "./archive-decode.ts";
import { streamGuard } from "./stream-guard.ts";
import {
  ENTRY,
  VOLUME_ENTRY,
  MAX_MANIFEST_BYTES,
  MAX_SMALL_ENTRY_BYTES,
  entryRank,
  invalidArchive,
  parseChecksums,
  parseManifest,
  type Checksums,
  type EntryDigestRecord,
  type Manifest,
} from "./format.ts";

export interface ReadHandlers {
  /** Called once manifest.json has been read and parsed (it is always the first entry). */
  onManifest?: (manifest: Manifest) => Promise<void>;
  /**
   * Called with images/base.tar as a stream. Return "skip" without touching it to stop reading the file
   * there (nothing after the head is needed); otherwise consume it to the end.
   */
  onImage?: (image: Readable, size: number) => Promise<"consumed" | "skip">;
  /** Called with each volumes/<name>.tar as a stream, which it must consume. */
  onVolume?: (name: string, tar: Readable) => Promise<void>;
}

/** One entry of the archive: its header, and its data to read (or resume). */
export type TarStreamEntry = TarEntryStream;

/**
 * Reads the rest of a file that turned out to be a vm 3.x snapshot file (see legacy-reader.ts): it gets
 * the first entry and the iterator of the others, and must consume every entry's data.
 */
export type LegacyReader<T> = (first: TarStreamEntry, rest: AsyncIterator<TarStreamEntry>) => Promise<T>;

/** A vm 3.x file, read by a LegacyReader, through the same decompression and framing checks. */
export interface LegacyContents<T> {
  kind: "vm3";
  compression: Compression;
  result: T;
}

export interface ArchiveContents {
  kind: "vm";
  compression: Compression;
  manifest: Manifest;
  manifestRaw: Buffer;
  small: Map<string, Buffer>;
  /** Every entry read, with the size and sha256 of the bytes actually read. */
  read: EntryDigestRecord[];
  checksums: Checksums | undefined;
  checksumsRaw: Buffer | undefined;
  signatureRaw: Buffer | undefined;
  stoppedAtImage: boolean;
}

const ALLOWED = new Set<string>([...Object.values(ENTRY)]);

/**
 * Reads a snapshot file in one pass: it refuses anything but the entries the format defines (no links,
 * devices, duplicates or paths outside the archive's folders), hashes every entry as it passes, and hands
 * the image to `onImage` as a stream. It checks the archive's shape; `verifyContents` checks the digests.
 */
export async function readSnapshotArchive(input: Readable, handlers?: ReadHandlers): Promise<ArchiveContents>;
export async function readSnapshotArchive<T>(
  input: Readable,
  handlers: ReadHandlers,
  legacy: LegacyReader<T>,
): Promise<ArchiveContents | LegacyContents<T>>;
export async function readSnapshotArchive<T>(
  input: Readable,
  handlers: ReadHandlers = {},
  legacy?: LegacyReader<T>,
): Promise<ArchiveContents | LegacyContents<T>> {
  const { compression, stream } = await sniff(input);
  // One parse of the tar: the walker that hands the entries over also checks the framing (headers'
  // checksums, zeros where a tar writer leaves zeros) that no digest covers.
  const { input: extract, entries } = tarEntries((error) =>
    /ends in the middle/.test(error.message)
      ? invalidArchive(
          "The snapshot file ends in the middle of an entry: it is truncated",
          "The copy is incomplete; transfer it again",
        )
      : invalidArchive(`The snapshot file's tar stream is damaged: ${error.message}`),
  );
  const contents: Partial<ArchiveContents> & { small: Map<string, Buffer>; read: EntryDigestRecord[] } = {
    kind: "vm",
    compression,
    small: new Map(),
    read: [],
    stoppedAtImage: false,
  };
  const seen = new Set<string>();
  let lastRank = -1;
  const decompressor = createDecompressor(compression);
  const guard = streamGuard(stream, decompressor, compression, () => contents.manifest);
  const feeding = pipeline(stream, decompressor, extract).catch((error: unknown) => {
    if (contents.stoppedAtImage) return;
    throw decodeError(guard.failure ?? error);
  });
  // It may reject while the loop below still waits on an entry; it is awaited there, but must not count
  // as an unhandled rejection in between (which would end the process).
  feeding.catch(() => {});
  try {
    for (let next = await entries.next(); !next.done; next = await entries.next()) {
      const entry = next.value;
      const { name, kind, size } = entry.header;
      if (seen.size === 0 && isLegacyStart(entry.header)) {
        if (!legacy)
          throw invalidArchive(
            "This is a snapshot file of vm 3.x; `vm snapshot import`, `verify` and `inspect` read it",
          );
        const result = await legacy(entry, entries);
        await feeding;
        guard.checkEnd();
        return { kind: "vm3", compression, result };
      }
      if (kind !== "file")
        throw invalidArchive(`Entry '${name}' is a ${kind}; snapshot files hold only regular files`);
      const volume = VOLUME_ENTRY.exec(name)?.[1];
      if (!ALLOWED.has(name) && !volume)
        throw invalidArchive(`Unexpected entry '${name}' in the snapshot file`);
      if (seen.has(name)) throw invalidArchive(`Entry '${name}' appears twice in the snapshot file`);
      if (seen.size === 0 && name !== ENTRY.manifest)
        throw invalidArchive(`The snapshot file must start with manifest.json, not '${name}'`);
      if (contents.signatureRaw)
        throw invalidArchive(`Entry '${name}' comes after signature.json, which must be last`);
      if (contents.checksums && name !== ENTRY.signature) {
        throw invalidArchive(
          `Entry '${name}' comes after checksums.json, which only signature.json may follow`,
        );
      }
      if (name === ENTRY.signature && !contents.checksums)
        throw invalidArchive("signature.json comes before checksums.json");
      const rank = entryRank(name, volume, contents.manifest);
      if (rank < lastRank)
        throw invalidArchive(
          `Entry '${name}' is out of order: snapshot files hold manifest.json, the documents, the image, the volumes, then checksums.json`,
        );
      lastRank = rank;
      seen.add(name);
      if (volume) {
        if (!contents.manifest?.volumes?.includes(volume))
          throw invalidArchive(`Entry '${name}' is not a volume the manifest lists`);
        await readStreamed(
          entry,
          name,
          contents,
          (stream) => handlers.onVolume?.(volume, stream) ?? drain(stream),
        );
        continue;
      }
      if (name === ENTRY.image) {
        const outcome = await readImage(entry, size, contents, handlers);
        if (outcome === "skip") {
          contents.stoppedAtImage = true;
          input.destroy();
          break;
        }
        continue;
      }
      const limit = name === ENTRY.manifest ? MAX_MANIFEST_BYTES : MAX_SMALL_ENTRY_BYTES;
      if (size > limit)
        throw invalidArchive(
          `Entry '${name}' is ${size} bytes, more than the ${limit} a snapshot file allows`,
        );
      const data = await collect(entry);
      contents.read.push({ path: name, size: data.length, sha256: sha256(data) });
      if (name === ENTRY.manifest) {
        contents.manifestRaw = data;
        contents.manifest = parseManifest(data);
        await handlers.onManifest?.(contents.manifest);
      } else if (name === ENTRY.checksums) {
        contents.checksums = parseChecksums(data);
        contents.checksumsRaw = data;
      } else if (name === ENTRY.signature) {
        contents.signatureRaw = data;
      } else {
        contents.small.set(name, data);
      }
    }
    // Stopping early destroys the input, and the pipeline of the remaining streams may never settle then.
    if (contents.stoppedAtImage) feeding.catch(() => {});
    else {
      await feeding;
      guard.checkEnd();
    }
  } catch (error) {
    // As leaving a for-await loop does: the entry reader goes first, then the input. Wait until every
    // stream of the pipeline has closed (its promise does not always settle once they are destroyed
    // mid-flow, which left the process with nothing to wait for and no exit code).
    await entries.return?.().catch(() => undefined);
    input.destroy();
    await Promise.all(
      [stream, decompressor, extract].map((s) =>
        s.closed
          ? Promise.resolve()
          : once(s, "close").then(
              () => {},
              () => {},
            ),
      ),
    );
    throw decodeError(guard.failure ?? error);
  }
  if (!contents.manifest || !contents.manifestRaw)
    throw invalidArchive("The file holds no manifest.json: it is not a vm snapshot");
  return contents as ArchiveContents;
}

/**
 * vm 3.x wrote its files with the Rust tar crate's append_dir_all("."): the first entry is the folder
 * "./" itself, which a vm snapshot file never holds (it starts with manifest.json).
 */
function isLegacyStart(header: TarEntry): boolean {
  return header.type === "directory" && (header.name === "./" || header.name === ".");
}

/** A copy of `entry` to hand on, hashed and counted as it passes; `digest` settles once all of it has. */
function hashedCopy(entry: Readable): {
  copy: Readable;
  digest: Promise<{ size: number; sha256: string }>;
} {
  const hash = createHash("sha256");
  let size = 0;
  const { copy, done } = copyOf(entry as AsyncIterable<Buffer>, (chunk) => {
    hash.update(chunk);
    size += chunk.length;
  });
  const digest = done.then(() => ({ size, sha256: hash.digest("hex") }));
  // A skipped image destroys its copy unread, which stops the copying: nobody waits for this digest then.
  digest.catch(() => {});
  return { copy, digest };
}

/** Streams an entry to `consume` while hashing it into the record of what was read. */
async function readStreamed(
  entry: Readable,
  path: string,
  contents: { read: EntryDigestRecord[] },
  consume: (stream: Readable) => Promise<void>,
): Promise<void> {
  const { copy, digest } = hashedCopy(entry);
  const [, read] = await Promise.all([consume(copy), digest]);
  contents.read.push({ path, ...read });
}

async function drain(stream: Readable): Promise<void> {
  stream.resume();
  await once(stream, "end");
}

async function readImage(
  entry: Readable,
  size: number,
  contents: Partial<ArchiveContents> & { read: EntryDigestRecord[] },
  handlers: ReadHandlers,
): Promise<"consumed" | "skip"> {
  const manifest = contents.manifest;
  if (!manifest) throw invalidArchive("images/base.tar comes before manifest.json");
  // A decompression bomb claims a huge entry; an image is never much bigger than the size recorded for it.
  const cap = manifest.size_bytes * 2 + 256 * 1024 * 1024;
  if (size > cap)
    throw invalidArchive(
      `images/base.tar claims ${size} bytes, far more than the ${manifest.size_bytes} the manifest records for the image`,
    );
  const { copy, digest } = hashedCopy(entry);
  const outcome = handlers.onImage
    ? await handlers.onImage(copy, size)
    : // Read to the end here; a damaged image fails the reader, not an unheard stream.
      (copy.on("error", () => {}).resume(), "consumed" as const);
  if (outcome === "skip") {
    copy.destroy();
    return "skip";
  }
  contents.read.push({ path: ENTRY.image, ...(await digest) });
  return "consumed";
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}
