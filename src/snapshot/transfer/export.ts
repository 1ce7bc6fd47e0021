import { mkdir } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import type { Writable } from "node:stream";
import { extensionFor, type Compression } from "../../lib/codec.ts";
import { ensureRoom, FileSink, StreamSink } from "../../lib/sink.ts";
import { removeStaleSpools } from "../../lib/atomic.ts";
import { isS3Url, parseS3Url } from "../../remote/s3.ts";
import type { S3Sink } from "../../remote/s3-sink.ts";
import { formatBytes } from "../../lib/units.ts";
import { ArchiveWriter } from "../../snapshot-file/writer.ts";
import type { Services } from "../../env/services.ts";
import { VmError } from "../../errors.ts";
import { checkFault, pausePoint } from "../../lib/faults.ts";
import { transaction } from "../../lib/transaction.ts";
import { VERSION } from "../../version.ts";
import { ENTRY, HEAD_ENTRIES, buildManifest, documents, type Manifest } from "../../snapshot-file/format.ts";
import { findSnapshotImage } from "../../store/resolve.ts";
import { allowPatterns, withoutAllowed } from "../../secret-scan/allow.ts";
import { scanImageConfig } from "../../secret-scan/config-entries.ts";
import { scanned } from "./scan.ts";
import { SecretScanner, type SecretFinding } from "../../secret-scan/secrets.ts";
import { loadSigner } from "../../snapshot-file/signing.ts";
import { writeTrailer } from "../../snapshot-file/trailer.ts";
import { projectVolumes, readVolume } from "../../store/volumes.ts";

export interface ExportOptions {
  name: string;
  project: string | undefined;
  /** A path, "-" for the given stream, or an s3:// path (streamed into a multipart upload). */
  output: string | undefined;
  /** For an s3:// output: the store's endpoint and addressing (--endpoint, --path-style). */
  s3?: { endpoint?: string | undefined; pathStyle?: boolean | undefined };
  stdout: Writable;
  cwd: string;
  compression: Compression;
  level?: number;
  failOnSecrets: boolean;
  /** `--allow` patterns, on top of secrets.ignore's. */
  allow?: string[];
  /** Path of an ed25519 private key to sign the file with. */
  sign?: string;
  /** Also carry the project's named volumes (the project: --project, the snapshot's, or vm.yaml's). */
  includeVolumes: boolean;
  spoolDir: string;
  onStart: (info: { total: number; target: string }) => void;
  onBytes: (n: number) => void;
}

export interface ExportResult {
  target: string;
  name: string;
  bytesWritten: number;
  imageBytes: number;
  secrets: SecretFinding[];
  /** Findings secrets.ignore or --allow let through unreported. */
  allowedSecrets: number;
  manifest: Manifest;
}

/** `vm snapshot export`: engine → archive → file, one pass over the image, written atomically. */
export async function exportSnapshot(services: Services, options: ExportOptions): Promise<ExportResult> {
  const { engine } = services;
  const { ref, metadata, image } = await findSnapshotImage(
    engine,
    services.snapshots,
    options.name,
    options.project,
    services.log,
  );
  const signer = options.sign ? await loadSigner(resolve(options.cwd, options.sign)) : undefined;
  // What the image's config and history show needs no save stream: refuse before writing a byte.
  const allow = await allowPatterns(dirname(services.snapshots.root), options.allow ?? []);
  if (options.failOnSecrets) {
    const inConfig = scanImageConfig({
      rootfs: {},
      config: { Env: image.config.env, Labels: image.labels },
      history: (await engine.images.history(image.id)).map((line) => ({ created_by: line })),
    });
    const shown = withoutAllowed(
      inConfig.map((f) => ({ ...f, layer: "config", source: "config" as const })),
      allow,
    );
    if (shown.findings.length > 0) throw secretsFound(shown.findings);
  }
  const info = await engine.info();
  const toStdout = options.output === "-";
  const toS3 = options.output !== undefined && isS3Url(options.output);
  const target =
    toStdout || toS3
      ? options.output!
      : resolve(options.cwd, options.output ?? `${ref.name}${extensionFor(options.compression)}`);

  const volumeProject = options.project ?? metadata.project ?? undefined;
  if (options.includeVolumes && !volumeProject) {
    throw new VmError("PROJECT_UNKNOWN", "--include-volumes needs the project whose volumes to include", {
      hint: "Run it in the project's folder, or pass --project NAME",
    });
  }
  const volumes = options.includeVolumes && volumeProject ? await projectVolumes(engine, volumeProject) : [];
  const docs = documents(metadata, ref.name);
  const manifest = buildManifest({
    name: ref.name,
    metadata,
    docs,
    exportedAt: new Date().toISOString(),
    vmVersion: VERSION,
    engine: { version: info.serverVersion, image_store: info.imageStore },
    layers: image.layers,
    streamed: [ENTRY.image, ...volumes.map((v) => `volumes/${v.name}.tar`)],
    volumes: volumes.map((v) => v.name),
    signedBy: signer?.fingerprint,
  });
  const manifestBytes = Buffer.from(JSON.stringify(manifest, null, 2) + "\n");

  if (!toStdout && !toS3) {
    await mkdir(dirname(target), { recursive: true });
    // Images compress 2-4x in practice; a tenth of the image is a floor no real one goes under.
    const floor = options.compression === "none" ? metadata.size_bytes : Math.floor(metadata.size_bytes / 10);
    await ensureRoom(target, floor, `a ${formatBytes(metadata.size_bytes)} image (${options.compression})`);
  }
  // What an export or import killed earlier left in the scratch folder (a spooled image, a held part).
  await removeStaleSpools(options.spoolDir);
  // One transaction (lib/transaction.ts): the temporary file (or the multipart upload) goes on any failure
  // or interruption; the rename over the target (completing the upload) is its commit.
  return transaction(async (tx) => {
    // The engine's save starts first: its first byte can take seconds (Docker 20.10 exports every layer
    // before it sends one), and opening the sink meanwhile is free (for s3://, loading the SDK and
    // starting the upload). Whatever ends the export early also ends the save.
    const saving = engine.images.save(metadata.engine_image_id);
    saving.catch(() => {}); // awaited below, where a failure is reported
    tx.stop(
      () =>
        void saving.then(
          (body) => body.destroy(),
          () => {},
        ),
    );
    const sink = toStdout
      ? new StreamSink(options.stdout)
      : toS3
        ? await openS3Sink(target, options.s3 ?? {}, services.env, metadata.size_bytes, options.spoolDir)
        : await FileSink.create(target, metadata.size_bytes);
    if (!(sink instanceof StreamSink)) tx.undo(() => sink.abort());
    options.onStart({ total: metadata.size_bytes, target });
    const writer = new ArchiveWriter({
      sink,
      compression: options.compression,
      ...(options.level !== undefined ? { level: options.level } : {}),
      spoolDir: options.spoolDir,
    });
    await writer.addBuffer(ENTRY.manifest, manifestBytes);
    for (const path of HEAD_ENTRIES) await writer.addBuffer(path, docs[path]!);
    const scanner = new SecretScanner();
    // Borrowed chunks: each is valid until the next is asked for. The scanner and the hash take them at
    // once; the compressor copies them into its own buffers.
    const save = await saving;
    const imageEntry = await writer.addStream(ENTRY.image, scanned(save, scanner), options.onBytes);
    const { findings: secrets, allowed: allowedSecrets } = withoutAllowed(await scanner.result(), allow);
    for (const volume of volumes) {
      const { tar, close } = await readVolume(
        engine,
        metadata.engine_image_id,
        volume.engineName,
        services.extraLabels,
      );
      try {
        await writer.addStream(`volumes/${volume.name}.tar`, tar as AsyncIterable<Buffer>, options.onBytes);
      } finally {
        await close();
      }
    }
    checkFault(services.env, "export-after-image");
    if (secrets.length > 0 && options.failOnSecrets) throw secretsFound(secrets);
    await writeTrailer(writer, manifestBytes, signer);
    await pausePoint(services.env, "export-before-commit");
    if (!(sink instanceof StreamSink))
      await tx.commit(async () => {
        await pausePoint(services.env, "export-committing");
        await sink.commit();
      });
    return {
      target,
      name: ref.name,
      bytesWritten: sink.position,
      imageBytes: imageEntry.size,
      secrets,
      allowedSecrets,
      manifest,
    };
  });
}

/** The S3 upload an s3:// export streams into; the SDK loads only now. */
async function openS3Sink(
  target: string,
  s3: NonNullable<ExportOptions["s3"]>,
  env: NodeJS.ProcessEnv,
  expectedBytes: number,
  spoolDir: string,
): Promise<S3Sink> {
  const { S3Sink } = await import("../../remote/s3-sink.ts");
  return S3Sink.create(parseS3Url(target), { ...s3, env }, expectedBytes, spoolDir);
}

function secretsFound(findings: SecretFinding[]): VmError {
  return new VmError(
    "SECRETS_FOUND",
    `The image holds likely secrets, so nothing was exported:\n${formatFindings(findings)}`,
    {
      hint: "Remove them from the environment and create the snapshot again, or export without --fail-on-secrets",
    },
  );
}

export function formatFindings(findings: SecretFinding[]): string {
  return findings
    .map(
      (f) => `  ${f.source === "config" ? "" : "/"}${f.path}: ${f.kind}${f.preview ? ` (${f.preview})` : ""}`,
    )
    .join("\n");
}
