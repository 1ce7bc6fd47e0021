/**
 * Test support: snapshot files written the way `vm snapshot export` writes them (src/snapshot/transfer/
 * export.ts), without an engine: the documents, the manifest, the ArchiveWriter on a FileSink (seekable:
 * the image's header is filled in afterwards) or a StreamSink (spooled), the image fed as an
 * AsyncIterable<Buffer> of borrowed chunks like the engine's save(), volumes, then the trailer
 * (checksums.json, an optional signature.json) by the same writeTrailer export uses.
 */
import assert from "node:assert/strict";
import { mkdtemp, readFile, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import type { Compression } from "../../lib/codec.ts";
import { FileSink, StreamSink } from "../../lib/sink.ts";
import { ENTRY, HEAD_ENTRIES, buildManifest, documents, type Manifest } from "../format.ts";
import { type SnapshotMetadata } from "../metadata.ts";
import type { Signer } from "../signing.ts";
import { writeTrailer } from "../trailer.ts";
import { ArchiveWriter } from "../writer.ts";
import { dockerSave, type SavedImage } from "./docker-save.ts";

export function sampleMetadata(overrides: Partial<SnapshotMetadata> = {}): SnapshotMetadata {
  return {
    format: 1,
    name: "vibe-base",
    scope: "global",
    project: null,
    created_at: "2026-01-02T03:04:05.000Z",
    description: "Base image for tests",
    source: "committed",
    image_id: `sha256:${"1".repeat(64)}`,
    engine_image_id: `sha256:${"1".repeat(64)}`,
    image_tag: "vm-snapshot/global:vibe-base",
    platform: { os: "linux", architecture: "amd64" },
    size_bytes: 4096,
    languages: { node: "22.11.0" },
    tools: [{ name: "cargo-watch", version: "8.5.3", source: "cargo" }],
    os_packages: { manager: "apt", count: 2, packages: ["bash", "curl"] },
    build: {
      vm_version: "0.1.0",
      engine_version: "27.0.0",
      image_store: "classic",
      build_date: "2026-01-02T03:04:05.000Z",
      box: null,
      dockerfile: null,
      dockerfile_sha256: null,
      build_args: {},
    },
    git: null,
    ...overrides,
  };
}

/** Chunks of `data` of `size` bytes, each in the same reused buffer (valid until the next is asked for). */
export async function* borrowedChunks(data: Buffer, size = 4096): AsyncGenerator<Buffer> {
  const borrowed = Buffer.alloc(size);
  for (let at = 0; at < data.length; at += size) {
    const n = data.copy(borrowed, 0, at, Math.min(at + size, data.length));
    yield borrowed.subarray(0, n);
    // What the consumer kept must have been copied: scribble over the buffer as the engine's reader would.
    borrowed.fill(0xee);
  }
}

export interface WriteOptions {
  dir: string;
  compression?: Compression;
  name?: string;
  image?: SavedImage;
  /** volumes/<name>.tar entries, in this order (the manifest lists them so). */
  volumes?: Record<string, Buffer>;
  signer?: Signer;
  /** Applied to the manifest before it is written (what an exporter with a bug or a liar would write). */
  manifest?: (m: Manifest) => void;
  /** Write to a stream (spooling the image) instead of a seekable file. */
  stream?: boolean;
  file?: string;
}

export interface WrittenSnapshot {
  path: string;
  bytes: Buffer;
  manifest: Manifest;
  image: SavedImage;
  metadata: SnapshotMetadata;
}

export async function writeSnapshot(options: WriteOptions): Promise<WrittenSnapshot> {
  const compression = options.compression ?? "gzip";
  const image = options.image ?? dockerSave();
  const name = options.name ?? "vibe-base";
  const metadata = sampleMetadata({
    name,
    image_id: image.configDigest,
    engine_image_id: image.engineId,
    size_bytes: image.tar.length,
  });
  const docs = documents(metadata, name);
  const volumes = Object.entries(options.volumes ?? {});
  const manifest = buildManifest({
    name,
    metadata,
    docs,
    exportedAt: "2026-01-02T04:00:00.000Z",
    vmVersion: "0.1.0",
    engine: { version: "27.0.0", image_store: image.layout === "oci" ? "containerd" : "classic" },
    layers: image.diffIds,
    streamed: [ENTRY.image, ...volumes.map(([v]) => `volumes/${v}.tar`)],
    volumes: volumes.map(([v]) => v),
    signedBy: options.signer?.fingerprint,
  });
  options.manifest?.(manifest);
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + "\n");
  const path = join(
    options.dir,
    options.file ?? `${name}-${compression}-${Math.random().toString(36).slice(2)}.snapshot`,
  );

  if (options.stream) {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on("data", (chunk: Buffer) => chunks.push(chunk));
    const ended = new Promise((resolve) => out.on("end", resolve));
    const spoolDir = await mkdtemp(join(options.dir, "spool-"));
    try {
      await drive(new StreamSink(out), spoolDir);
      out.end();
      await ended;
      // The spooled copy of the image is gone once the entry is written.
      assert.deepEqual(await readdir(spoolDir), []);
    } finally {
      await rm(spoolDir, { recursive: true, force: true });
    }
    const bytes = Buffer.concat(chunks);
    await writeFile(path, bytes);
    return { path, bytes, manifest, image, metadata };
  }
  const sink = await FileSink.create(path, image.tar.length);
  await drive(sink, undefined);
  await sink.commit();
  return { path, bytes: await readFile(path), manifest, image, metadata };

  async function drive(target: FileSink | StreamSink, spool: string | undefined): Promise<void> {
    const writer = new ArchiveWriter({ sink: target, compression, ...(spool ? { spoolDir: spool } : {}) });
    await writer.addBuffer(ENTRY.manifest, manifestBytes);
    for (const entry of HEAD_ENTRIES) await writer.addBuffer(entry, docs[entry]!);
    await writer.addStream(ENTRY.image, borrowedChunks(image.tar));
    for (const [volume, data] of volumes)
      await writer.addStream(`volumes/${volume}.tar`, borrowedChunks(data));
    await writeTrailer(writer, manifestBytes, options.signer);
  }
}

/** A temporary folder under the system's, removed by the returned function. */
export async function tempDir(
  prefix = "vm-snapshot-file-test-",
): Promise<{ dir: string; remove: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  return { dir, remove: () => rm(dir, { recursive: true, force: true }) };
}
