import { createHash } from "node:crypto";
import { closeSync, createReadStream, openSync, writeSync } from "node:fs";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { ExitCode, isVmError } from "../errors.ts";
import { DOWNLOAD_BUFFER, formatAt } from "./resume.ts";

/**
 * A kept download not touched for this long is dropped by the next download: the import it was for was
 * given up on, and its bytes (an image's worth) would otherwise stay in the cache for good.
 */
export const KEEP_PARTIAL_MS = 7 * 24 * 60 * 60 * 1000;

/** What an earlier run had downloaded of a URL: kept beside vm's cache until the file was read whole. */
interface PartialRecord {
  url: string;
  etag: string;
  size: number | undefined;
}

/** What a download tells the partial copy: where its stream starts, and the file's validator and size. */
export interface Continued {
  stream: Readable;
  startedAt: number;
  etag: string | undefined;
  size: number | undefined;
}

/**
 * The bytes of an https:// or s3:// file as they arrive, copied to `$XDG_CACHE_HOME/vm/downloads`, so
 * an import or verify interrupted (Ctrl-C, a network that stayed down) continues where it stopped when
 * run again: the next run asks the server for the rest under the recorded ETag (If-Range / If-Match),
 * and reads the kept bytes first. The copy goes once the file was read to its end, or when it proved
 * damaged or changed; a server that gives no ETag is not kept for (nothing could tell it changed).
 * Copies of other URLs untouched for a week (KEEP_PARTIAL_MS) are removed when a download opens.
 */
export class PartialDownload {
  private readonly part: string;
  private readonly meta: string;
  private readonly url: string;
  private record: PartialRecord | undefined;
  private kept = 0;

  private constructor(dir: string, url: string, record: PartialRecord | undefined, kept: number) {
    const key = createHash("sha256").update(url).digest("hex").slice(0, 32);
    this.part = join(dir, `${key}.part`);
    this.meta = join(dir, `${key}.json`);
    this.url = url;
    this.record = record;
    this.kept = kept;
  }

  static async open(env: NodeJS.ProcessEnv, url: string): Promise<PartialDownload> {
    const dir = join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "vm", "downloads");
    const probe = new PartialDownload(dir, url, undefined, 0);
    await dropAbandoned(dir, probe.part);
    try {
      const record = JSON.parse(await readFile(probe.meta, "utf8")) as PartialRecord;
      const kept = (await stat(probe.part)).size;
      const whole = record.size !== undefined && kept >= record.size;
      if (record.url === url && typeof record.etag === "string" && kept > 0 && !whole)
        return new PartialDownload(dir, url, record, kept);
    } catch {
      // none, or unreadable: start afresh
    }
    await mkdir(dir, { recursive: true });
    return probe;
  }

  /** Where to ask the server to continue from, when an earlier run left bytes. */
  get from(): { offset: number; etag: string } | undefined {
    return this.record ? { offset: this.kept, etag: this.record.etag } : undefined;
  }

  /** The whole file as one stream: the kept bytes (when the server continued there), then the new ones. */
  stream(download: Continued, onNote?: (text: string) => void): Readable {
    const continuing = download.startedAt > 0 && download.startedAt === this.kept;
    if (continuing)
      onNote?.(
        `Continuing the download an earlier run began: ${formatAt(this.kept, download.size)} is kept in ${this.part}\n`,
      );
    return Readable.from(this.bytes(download, continuing), {
      objectMode: false,
      highWaterMark: DOWNLOAD_BUFFER,
    });
  }

  private async *bytes(download: Continued, continuing: boolean): AsyncGenerator<Buffer> {
    const etag = download.etag;
    let fd: number | undefined;
    let complete = false;
    try {
      if (continuing) {
        for await (const chunk of createReadStream(this.part, { end: this.kept - 1, highWaterMark: 1 << 20 }))
          yield chunk as Buffer;
      }
      if (etag !== undefined) {
        if (!continuing) {
          const record: PartialRecord = { url: this.url, etag, size: download.size };
          await writeFile(this.meta, JSON.stringify(record));
        }
        fd = openSync(this.part, continuing ? "a" : "w", 0o600);
      }
      for await (const chunk of download.stream as AsyncIterable<Buffer>) {
        if (fd !== undefined) writeSync(fd, chunk);
        yield chunk;
      }
      complete = true;
    } catch (error) {
      if (isVmError(error) && error.exitCode === ExitCode.integrity) complete = true;
      throw error;
    } finally {
      if (fd !== undefined) closeSync(fd);
      if (complete || etag === undefined) await this.discard();
    }
  }

  /** Drops the kept bytes: the file was read whole, proved damaged, or is no longer wanted. */
  async discard(): Promise<void> {
    this.record = undefined;
    await rm(this.part, { force: true });
    await rm(this.meta, { force: true });
  }
}

/** Removes the kept downloads in `dir` (but `current`) whose bytes nobody has written for a week. */
async function dropAbandoned(dir: string, current: string): Promise<void> {
  const now = Date.now();
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    if (!name.endsWith(".part")) continue;
    const part = join(dir, name);
    if (part === current) continue;
    const touched = await stat(part).then(
      (info) => info.mtimeMs,
      () => now,
    );
    if (now - touched < KEEP_PARTIAL_MS) continue;
    await rm(part, { force: true });
    await rm(part.replace(/\.part$/, ".json"), { force: true });
  }
}
