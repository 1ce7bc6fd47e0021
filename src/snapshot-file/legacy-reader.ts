import type { Readable } from "node:stream";
import type { LegacyReader, TarStreamEntry } from "./archive-reader.ts";
import { invalidArchive } from "./format.ts";
import {
  classifyLegacyEntry,
  MAX_LEGACY_DOCUMENT,
  parseLegacyManifest,
  parseLegacyMetadata,
  type LegacyManifest,
  type LegacyRead,
} from "./legacy-format.ts";

/** What reading a vm 3.x file hands on: each entry in the file's order, which the handlers must consume. */
export interface LegacyHandlers {
  onManifest?: (manifest: LegacyManifest) => Promise<void>;
  onImage: (image: Readable, file: string) => Promise<void>;
  onVolume: (name: string, archive: Readable, compression: "gzip" | "zstd") => Promise<void>;
}

/**
 * Reads the entries of a vm 3.x file in whatever order its writer left them (its folder walk had none):
 * only the paths the format has, each once, regular files only, documents within their size limit.
 */
export function legacyEntries(handlers: LegacyHandlers): LegacyReader<LegacyRead> {
  return async (first, rest) => {
    const read: LegacyRead = { volumes: [] };
    const seen = new Set<string>();
    for (let entry: TarStreamEntry | undefined = first; entry;) {
      const kind = classifyLegacyEntry(entry.header.name, entry.header.kind);
      const key = entry.header.name.replace(/^(\.\/)+/, "").replace(/\/+$/, "");
      if (seen.has(key))
        throw invalidArchive(`Entry '${entry.header.name}' appears twice in the snapshot file`);
      seen.add(key);
      const size = entry.header.size ?? 0;
      switch (kind.kind) {
        case "folder":
          await drain(entry);
          break;
        case "manifest":
        case "metadata": {
          if (size > MAX_LEGACY_DOCUMENT)
            throw invalidArchive(
              `${key} is ${size} bytes, more than the ${MAX_LEGACY_DOCUMENT} a snapshot file allows`,
            );
          const data = await collect(entry);
          if (kind.kind === "metadata") read.metadata = parseLegacyMetadata(data);
          else {
            read.manifest = parseLegacyManifest(data);
            await handlers.onManifest?.(read.manifest);
          }
          break;
        }
        case "compose":
          // The 3.x project's compose file and vm.yaml, kept for its restore; vm has no use for them.
          await drain(entry);
          break;
        case "image":
          if (read.image) throw invalidArchive(`The vm 3.x file holds a second image, images/${kind.file}`);
          read.image = { file: kind.file, size };
          await handlers.onImage(entry, kind.file);
          break;
        case "volume": {
          const name = kind.file.replace(/\.tar\.(gz|zst)$/, "");
          read.volumes.push({ file: kind.file, name, size });
          await handlers.onVolume(name, entry, kind.compression);
          break;
        }
      }
      const next = await rest.next();
      entry = next.done ? undefined : next.value;
    }
    return read;
  };
}

/** Reads a stream to its end, keeping nothing. */
export async function drain(stream: Readable): Promise<void> {
  for await (const chunk of stream) void chunk;
}

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}
