import type { S3Client } from "@aws-sdk/client-s3";
import { VmError } from "../errors.ts";
import type { Sink } from "../lib/sink.ts";
import { loadSdk, s3Client, s3Error, showS3, type S3Location, type S3Options } from "./s3.ts";

/** S3's limits for a multipart upload: 10,000 parts, each but the last at least 5 MiB, at most 5 GiB. */
const MAX_PARTS = 10_000;
const MIN_PART = 5 * 1024 * 1024;
/** Parts uploaded at once: enough to keep a link busy, few enough that memory stays flat. */
const IN_FLIGHT = 3;

interface Part {
  number: number;
  start: number;
  /** The part's bytes, filled up to `length` (allocated whole: one copy of each byte, no joining). */
  data: Buffer;
  length: number;
}

/**
 * An export written straight into an S3 multipart upload: parts are uploaded in parallel while the file
 * is still being written, so no local copy exists and memory stays at a few parts. The regions the writer
 * fills in later (a streamed entry's tar header, `hold`) keep their part in memory until then. Nothing is
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

  private constructor(
    location: S3Location,
    options: S3Options,
    client: S3Client,
    uploadId: string,
    basePart: number,
  ) {
    this.location = location;
    this.options = options;
    this.client = client;
    this.uploadId = uploadId;
    this.basePart = basePart;
    this.current = this.newPart(1, 0);
  }

  /** Starts the multipart upload; `expectedBytes` (an upper bound, if known) sizes the parts. */
  static async create(location: S3Location, options: S3Options, expectedBytes?: number): Promise<S3Sink> {
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
      return new S3Sink(location, options, client, started.UploadId, basePart);
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
      data.copy(part.data, offset, i, i + n);
      i += n;
    }
    this.holds = this.holds.filter((h) => !(h.start >= position && h.end <= position + data.length));
    for (const part of [...this.held.values()])
      if (!this.holding(part)) {
        this.held.delete(part.number);
        await this.upload(part);
      }
  }

  private holding(part: Part): boolean {
    return this.holds.some((h) => h.start < part.start + part.length && h.end > part.start);
  }

  private async seal(): Promise<void> {
    const part = this.current;
    this.current = this.newPart(part.number + 1, part.start + part.length);
    if (part.number >= MAX_PARTS)
      throw new VmError(
        "OUTPUT_UNWRITABLE",
        `${showS3(this.location)}: the export needs more than ${MAX_PARTS} parts`,
        {
          hint: "Export to a local file and upload it with the store's own tool",
        },
      );
    if (this.holding(part)) this.held.set(part.number, part);
    else await this.upload(part);
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
    if (this.current.length > 0 || this.current.number === 1) {
      const last = this.current;
      this.current = this.newPart(last.number + 1, last.start + last.length);
      await this.upload(last);
    }
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
