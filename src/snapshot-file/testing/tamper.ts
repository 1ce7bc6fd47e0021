/**
 * Test support: what someone holding a snapshot file (but not its maker's signing key) can do to it:
 * unpack it, change entries, recompute every digest the file carries (the manifest's entry digests,
 * checksums.json), pack it again. Signing again needs a key, so a re-sealed file keeps its old signature
 * unless `resign` is given one.
 */
import { Readable } from "node:stream";
import zlib from "node:zlib";
import { detectCompression, type Compression } from "../../lib/codec.ts";
import { ENTRY, HEAD_ENTRIES, type Checksums, type Manifest } from "../format.ts";
import { signChecksums, type Signer } from "../signing.ts";
import { verifyArchiveFile, type VerifiedFile } from "../verify-file.ts";
import { sha256 } from "../writer.ts";
import { readTar, tarBytes, type ItemType, type TarItem } from "./tar.ts";

export interface Entry {
  name: string;
  data: Buffer;
  type?: ItemType;
  linkname?: string;
}

export function decompress(bytes: Buffer): { compression: Compression; tar: Buffer } {
  const compression = detectCompression(bytes);
  const tar =
    compression === "gzip"
      ? zlib.gunzipSync(bytes)
      : compression === "zstd"
        ? zlib.zstdDecompressSync(bytes)
        : bytes;
  return { compression, tar };
}

export function compress(tar: Buffer, compression: Compression): Buffer {
  return compression === "gzip"
    ? zlib.gzipSync(tar)
    : compression === "zstd"
      ? zlib.zstdCompressSync(tar)
      : tar;
}

export function unpack(bytes: Buffer): { compression: Compression; entries: Entry[] } {
  const { compression, tar } = decompress(bytes);
  return {
    compression,
    entries: readTar(tar).map((item) => ({ name: item.name, data: item.data })),
  };
}

export function pack(entries: Entry[], compression: Compression): Buffer {
  const items: TarItem[] = entries.map((e) => ({
    name: e.name,
    data: e.data,
    ...(e.type ? { type: e.type } : {}),
    ...(e.linkname !== undefined ? { linkname: e.linkname } : {}),
  }));
  return compress(tarBytes(items), compression);
}

export function entry(entries: Entry[], name: string): Entry {
  const found = entries.find((e) => e.name === name);
  if (!found) throw new Error(`no entry ${name}`);
  return found;
}

export function manifestOf(entries: Entry[]): Manifest {
  return JSON.parse(entry(entries, ENTRY.manifest).data.toString("utf8")) as Manifest;
}

export function checksumsOf(entries: Entry[]): Checksums {
  return JSON.parse(entry(entries, ENTRY.checksums).data.toString("utf8")) as Checksums;
}

export const json = (value: unknown): Buffer => Buffer.from(JSON.stringify(value, null, 2) + "\n");

/**
 * Recomputes every digest the file carries after an edit: `editManifest` changes the manifest, then the
 * manifest's digests of the head entries, and checksums.json (manifest.json's sha256 and every entry's) are
 * made to match the entries as they now are. signature.json is left as it was, or signed with `resign`.
 */
export function reseal(
  entries: Entry[],
  options: { editManifest?: (m: Manifest) => void; resign?: Signer } = {},
): Entry[] {
  const manifest = manifestOf(entries);
  options.editManifest?.(manifest);
  manifest.entries = HEAD_ENTRIES.filter((path) => entries.some((e) => e.name === path)).map((path) => {
    const data = entry(entries, path).data;
    return { path, size: data.length, sha256: sha256(data) };
  });
  const manifestBytes = json(manifest);
  entry(entries, ENTRY.manifest).data = manifestBytes;
  return resealChecksums(entries, options.resign);
}

/**
 * Recomputes checksums.json alone (manifest.json's sha256 and every entry's) from the entries as they
 * are; signature.json is left as it was, or signed again with `resign`.
 */
export function resealChecksums(entries: Entry[], resign?: Signer): Entry[] {
  const manifestBytes = entry(entries, ENTRY.manifest).data;
  const checksums = entries.find((e) => e.name === ENTRY.checksums);
  if (checksums) {
    const list: Checksums = {
      version: 1,
      manifest_sha256: sha256(manifestBytes),
      entries: entries
        .filter((e) => e.name !== ENTRY.checksums && e.name !== ENTRY.signature)
        .map((e) => ({ path: e.name, size: e.data.length, sha256: sha256(e.data) })),
    };
    checksums.data = json(list);
    const signature = entries.find((e) => e.name === ENTRY.signature);
    if (resign && signature) signature.data = json(signChecksums(resign, checksums.data));
  }
  return entries;
}

/**
 * A readable stream of `bytes` in pieces of `piece` bytes, at least two (a stream whose only chunk is
 * followed at once by its end loses that chunk in sniff(): see the report of these tests).
 */
export function streamOf(bytes: Buffer, piece = 64 * 1024): Readable {
  const size = Math.max(1, Math.min(piece, Math.ceil(bytes.length / 2)));
  const pieces: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) pieces.push(bytes.subarray(at, at + size));
  return Readable.from(pieces, { objectMode: false });
}

/** `vm snapshot verify -`: the whole file, read from a stream of 8 KiB pieces, checked without an engine. */
export function verifyBytes(bytes: Buffer): Promise<VerifiedFile> {
  return verifyArchiveFile("-", "/", () => {}, streamOf(bytes, 8192));
}
