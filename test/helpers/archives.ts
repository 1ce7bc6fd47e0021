import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { Readable } from "node:stream";
import { gunzipSync, gzipSync } from "node:zlib";
import tar from "tar-stream";

/** One entry of a tar, as the tests build hostile and altered archives from real exports. */
export interface Entry {
  name: string;
  data: Buffer;
  type?: "file" | "symlink" | "link" | "directory" | "character-device" | "fifo";
  linkname?: string;
}

export async function readEntries(file: string): Promise<Entry[]> {
  let bytes = readFileSync(file);
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) bytes = gunzipSync(bytes);
  const extract = tar.extract();
  const entries: Entry[] = [];
  const done = (async () => {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry) chunks.push(chunk as Buffer);
      entries.push({ name: entry.header.name, data: Buffer.concat(chunks) });
    }
  })();
  Readable.from([bytes]).pipe(extract);
  await done;
  return entries;
}

export async function writeEntries(file: string, entries: Entry[], gzip = true): Promise<void> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const chunk of pack) chunks.push(chunk as Buffer);
  })();
  for (const e of entries) {
    const type = e.type ?? "file";
    if (type === "file") pack.entry({ name: e.name, size: e.data.length }, e.data);
    else pack.entry({ name: e.name, type, ...(e.linkname ? { linkname: e.linkname } : {}) });
  }
  pack.finalize();
  await collected;
  const tarBytes = Buffer.concat(chunks);
  writeFileSync(file, gzip ? gzipSync(tarBytes) : tarBytes);
}

const sha = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Changes manifest.json and re-seals checksums.json, as a careful forger (or a newer vm) would. */
export function resealed(entries: Entry[], change: (manifest: Record<string, unknown>) => void): Entry[] {
  const out = entries.map((e) => ({ ...e }));
  const manifestEntry = out.find((e) => e.name === "manifest.json")!;
  const manifest = JSON.parse(manifestEntry.data.toString("utf8")) as Record<string, unknown>;
  change(manifest);
  manifestEntry.data = Buffer.from(JSON.stringify(manifest, null, 2));
  const checksumsEntry = out.find((e) => e.name === "checksums.json")!;
  const checksums = JSON.parse(checksumsEntry.data.toString("utf8")) as {
    manifest_sha256: string;
    entries: { path: string; size: number; sha256: string }[];
  };
  checksums.manifest_sha256 = sha(manifestEntry.data);
  for (const item of checksums.entries) {
    const entry = out.find((e) => e.name === item.path);
    if (entry) {
      item.size = entry.data.length;
      item.sha256 = sha(entry.data);
    }
  }
  checksumsEntry.data = Buffer.from(JSON.stringify(checksums, null, 2));
  return out;
}
