import type { S3Client } from "@aws-sdk/client-s3";
import { mkdir, open, unlink, writeFile } from "node:fs/promises";
import { VmError } from "../errors.ts";
import type { Sink } from "../lib/sink.ts";
import { spoolPathIn } from "../lib/atomic.ts";
import { loadSdk, s3Client, s3Error, showS3, type S3Location, type S3Options } from "./s3.ts";

/** S3's limits for a multipart upload: 10,000 parts, each but the last at least 5 MiB, at most 5 GiB. */
const MAX_PARTS = 10_000;
const MIN_PART = 5 * 1024 * 1024;
/**
 * Parts uploaded at once: two keep a link busy while the next part fills (the export's compressor makes
 * bytes no faster than that), and each one more is another part's buffer in memory.
 */
const IN_FLIGHT = 2;

interface Part {
  number: number;
  start: number;
  /** The part's bytes, filled up to `length` (allocated whole: one copy of each byte, no joining). */
  data: Buffer;
  length: number;
  /** Where a held part waits (its bytes on disk, `data` given back for reuse); undefined: in memory. */
  file?: string | undefined;
}

/**
 * An export written straight into an S3 multipart upload: parts are uploaded in parallel while the file
 * is still being written, so no local copy exists and memory stays at a few parts. A part with a region the
 * writer fills in later (a streamed entry's tar header, `hold`) waits that long, the whole image: in a file
 * of its size under `spoolDir` (in memory when there is none or it cannot be written). Nothing is
 * visible under the key before `commit` completes the upload; `abort` (a failure, Ctrl-C) aborts it, so
 * no parts stay stored.
 */
export class S3Sink implements Sink {
  readonly seekable = true;
  position = 0;
  readonly location: S3Location;
  private readonly client: S3Client;
  private readonly uploadId: string;
  private readonly basePart: number;
  private current: Part;
  private readonly held = new Map<number, Part>();
  private holds: { start: number; end: number }[] = [];
  private readonly done: { PartNumber: number; ETag: string }[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private failure: Error | undefined;
  private readonly options: S3Options;
  private readonly spoolDir: string | undefined;

  private constructor(
    location: S3Location,
    options: S3Options,
    client: S3Client,
    uploadId: string,
    basePart: number,
    spoolDir: string | undefined,
  ) {
    this.location = location;
    this.options = options;
    this.client = client;
    this.uploadId = uploadId;
    this.basePart = basePart;
    this.spoolDir = spoolDir;
    this.current = this.newPart(1, 0);
  }

  /**
   * Starts the multipart upload; `expectedBytes` (an upper bound, if known) sizes the parts, and held
   * parts wait in `spoolDir`.
   */
  static async create(
    location: S3Location,
    options: S3Options,
    expectedBytes?: number,
    spoolDir?: string,
  ): Promise<S3Sink> {
    const { CreateMultipartUploadCommand } = await loadSdk();
    const client = await s3Client(options);
    const basePart = Math.max(
      MIN_PART,
      Math.ceil((expectedBytes ?? 0) / (MAX_PARTS / 2) / 1048576) * 1048576,
    );
    try {
      const started = await client.send(
        new CreateMultipartUploadCommand({
          Bucket: location.bucket,
          Key: location.key,
          ContentType: "application/octet-stream",
        }),
      );
      if (!started.UploadId) throw new Error("the store started no upload (no UploadId)");
      return new S3Sink(location, options, client, started.UploadId, basePart, spoolDir);
    } catch (error) {
      client.destroy();
      throw s3Error(error, location, options, "write");
    }
  }

  /** A part's size: doubled past 2,500 and again past 5,000 parts, so an export of any size fits. */
  private partSize(number: number): number {
    return this.basePart * (number > 5000 ? 4 : number > 2500 ? 2 : 1);
  }

  /**
   * Part buffers come back here once uploaded and are used again: memory stays at the few parts in use,
   * instead of growing with garbage buffers until the next full collection.
   */
  private readonly spare: Buffer[] = [];

  private newPart(number: number, start: number): Part {
    const size = this.partSize(number);
    const reused = this.spare.findIndex((b) => b.length === size);
    const data = reused >= 0 ? this.spare.splice(reused, 1)[0]! : Buffer.allocUnsafe(size);
    return { number, start, data, length: 0 };
  }

  hold(position: number, length: number): void {
    this.holds.push({ start: position, end: position + length });
  }

  async write(data: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    let rest = data;
    while (rest.length > 0) {
      const room = this.partSize(this.current.number) - this.current.length;
      const piece = rest.length > room ? rest.subarray(0, room) : rest;
      // The writer reuses its buffers: the bytes are copied into the part.
      piece.copy(this.current.data, this.current.length);
      this.current.length += piece.length;
      this.position += piece.length;
      rest = rest.subarray(piece.length);
      if (this.current.length >= this.partSize(this.current.number)) await this.seal();
    }
  }

  async writeAt(data: Buffer, position: number): Promise<void> {
    if (this.failure) throw this.failure;
    const parts = [...this.held.values(), this.current];
    for (let i = 0; i < data.length;) {
      const at = position + i;
      const part = parts.find((p) => at >= p.start && at < p.start + p.length);
      if (!part)
        throw new Error(
          `S3Sink: byte ${at} is in a part already uploaded (a region written later needs hold())`,
        );
      const offset = at - part.start;
      const n = Math.min(data.length - i, part.length - offset);
      if (part.file) await patchFile(part.file, data.subarray(i, i + n), offset);
      else data.copy(part.data, offset, i, i + n);
      i += n;
    }
    this.holds = this.holds.filter((h) => !(h.start >= position && h.end <= position + data.length));
    for (const part of [...this.held.values()])
      if (!this.holding(part)) {
        this.held.delete(part.number);
        await this.upload(await this.unstash(part));
      }
  }

  private holding(part: Part): boolean {
    return this.holds.some((h) => h.start < part.start + part.length && h.end > part.start);
  }

  private async seal(): Promise<void> {
    const part = this.current;
    if (part.number >= MAX_PARTS)
      throw new VmError(
        "OUTPUT_UNWRITABLE",
        `${showS3(this.location)}: the export needs more than ${MAX_PARTS} parts`,
        {
          hint: "Export to a local file and upload it with the store's own tool",
        },
      );
    if (this.holding(part)) this.held.set(part.number, await this.stash(part));
    else await this.upload(part);
    // Only now: the upload may have waited for one under way to finish and give its buffer back.
    this.current = this.newPart(part.number + 1, part.start + part.length);
  }

  /** Moves a held part's bytes to a file, its buffer back to the spares; kept in memory if that fails. */
  private async stash(part: Part): Promise<Part> {
    if (this.spoolDir === undefined) return part;
    const file = spoolPathIn(this.spoolDir);
    try {
      await mkdir(this.spoolDir, { recursive: true });
      await writeFile(file, part.data.subarray(0, part.length), { flag: "wx", mode: 0o600 });
    } catch {
      await unlink(file).catch(() => {});
      return part;
    }
    this.spare.push(part.data);
    return { ...part, data: Buffer.alloc(0), file };
  }

  /** A stashed part's bytes back in a part buffer, its file removed. */
  private async unstash(part: Part): Promise<Part> {
    if (!part.file) return part;
    const back = this.newPart(part.number, part.start);
    const handle = await open(part.file, "r");
    try {
      const { bytesRead } = await handle.read(back.data, 0, part.length, 0);
      if (bytesRead !== part.length)
        throw new Error(`S3Sink: ${part.file} holds ${bytesRead} of the part's ${part.length} bytes`);
    } finally {
      await handle.close();
    }
    await unlink(part.file).catch(() => {});
    return { ...back, length: part.length };
  }

  /** Uploads a part, waiting first while IN_FLIGHT are under way (the writer's backpressure). */
  private async upload(part: Part): Promise<void> {
    while (this.inFlight.size >= IN_FLIGHT) await Promise.race(this.inFlight);
    if (this.failure) throw this.failure;
    const { UploadPartCommand } = await loadSdk();
    const body = part.data.subarray(0, part.length);
    const sending = this.client
      .send(
        new UploadPartCommand({
          Bucket: this.location.bucket,
          Key: this.location.key,
          UploadId: this.uploadId,
          PartNumber: part.number,
          Body: body,
          ContentLength: body.length,
        }),
      )
      .then((res) => {
        if (!res.ETag) throw new Error(`the store gave part ${part.number} no ETag`);
        this.done.push({ PartNumber: part.number, ETag: res.ETag });
      })
      .catch((error: unknown) => {
        const failed = s3Error(error, this.location, this.options, "write");
        this.failure ??= failed instanceof Error ? failed : new Error(String(failed));
      })
      .finally(() => {
        this.inFlight.delete(sending);
        this.spare.push(part.data);
      });
    this.inFlight.add(sending);
  }

  /** Uploads what is left and completes the upload: the object appears whole, at once. */
  async commit(): Promise<void> {
    const { CompleteMultipartUploadCommand } = await loadSdk();
    if (this.holds.length > 0) throw new Error("S3Sink: a held region was never filled in");
    if (this.current.length > 0 || this.current.number === 1) await this.upload(this.current);
    await Promise.all(this.inFlight);
    if (this.failure) throw this.failure;
    try {
      await this.client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.location.bucket,
          Key: this.location.key,
          UploadId: this.uploadId,
          MultipartUpload: { Parts: [...this.done].sort((a, b) => a.PartNumber - b.PartNumber) },
        }),
      );
    } catch (error) {
      throw s3Error(error, this.location, this.options, "write");
    }
    this.client.destroy();
  }

  /** Aborts the upload: the store drops every part, and nothing appears under the key. */
  async abort(): Promise<void> {
    const { AbortMultipartUploadCommand } = await loadSdk();
    for (const part of this.held.values()) if (part.file) await unlink(part.file).catch(() => {});
    await Promise.allSettled(this.inFlight);
    await this.client
      .send(
        new AbortMultipartUploadCommand({
          Bucket: this.location.bucket,
          Key: this.location.key,
          UploadId: this.uploadId,
        }),
      )
      .catch(() => {})
      .finally(() => this.client.destroy());
  }
}

/** Writes `data` into `file` at `position`. */
async function patchFile(file: string, data: Buffer, position: number): Promise<void> {
  const handle = await open(file, "r+");
  try {
    let done = 0;
    while (done < data.length)
      done += (await handle.write(data, done, data.length - done, position + done)).bytesWritten;
  } finally {
    await handle.close();
  }
}
