import { open, rename, statfs, unlink, type FileHandle } from "node:fs/promises";
import { dirname } from "node:path";
import type { Writable } from "node:stream";
import { formatBytes } from "./units.ts";
import { ExitCode, VmError, systemErrorCode } from "../errors.ts";
import { removeStaleTemps, tempPathFor } from "./atomic.ts";

/** Where an archive's bytes go: a file (seekable, so headers can be filled in later) or a stream. */
export interface Sink {
  readonly position: number;
  readonly seekable: boolean;
  write(data: Buffer): Promise<void>;
  writeAt(data: Buffer, position: number): Promise<void>;
  /** Says that `length` bytes at `position`, written now, will be written again with writeAt. */
  hold?(position: number, length: number): void;
}

/**
 * Writes to a temporary file beside the target and renames it into place on commit, so the target path
 * never holds a partial archive; abort removes the temporary file.
 */
export class FileSink implements Sink {
  readonly target: string;
  readonly temp: string;
  readonly seekable = true;
  position = 0;
  private readonly handle: FileHandle;
  private readonly expectedBytes: number | undefined;

  private constructor(target: string, temp: string, handle: FileHandle, expectedBytes: number | undefined) {
    this.target = target;
    this.temp = temp;
    this.handle = handle;
    this.expectedBytes = expectedBytes;
  }

  static async create(target: string, expectedBytes?: number): Promise<FileSink> {
    await removeStaleTemps(target);
    const temp = tempPathFor(target);
    try {
      return new FileSink(target, temp, await open(temp, "wx", 0o644), expectedBytes);
    } catch (error) {
      throw fileError(error, target, 0, expectedBytes);
    }
  }

  async write(data: Buffer): Promise<void> {
    await this.writeAt(data, this.position);
    this.position += data.length;
  }

  async writeAt(data: Buffer, position: number): Promise<void> {
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await this.handle.write(data, done, data.length - done, position + done);
        done += bytesWritten;
      }
    } catch (error) {
      throw fileError(error, this.target, this.position, this.expectedBytes);
    }
  }

  async commit(): Promise<void> {
    try {
      await this.handle.sync();
      await this.handle.close();
      await rename(this.temp, this.target);
    } catch (error) {
      await unlink(this.temp).catch(() => {});
      throw fileError(error, this.target, this.position, this.expectedBytes);
    }
  }

  async abort(): Promise<void> {
    await this.handle.close().catch(() => {});
    await unlink(this.temp).catch(() => {});
  }
}

/** A stream such as stdout: not seekable, so entries of unknown size are spooled first. */
export class StreamSink implements Sink {
  readonly seekable = false;
  position = 0;
  private readonly stream: Writable;

  constructor(stream: Writable) {
    this.stream = stream;
    // A reader that stops early (`| head`, an import that refuses or already has the image) closes the
    // pipe: the write below fails with EPIPE, and the stream also emits it as an 'error' event, which
    // would crash the process without a listener.
    stream.on("error", () => {});
  }

  /** Resolves once the stream has taken `data` out (flushed it), so the caller may reuse the buffer. */
  async write(data: Buffer): Promise<void> {
    this.position += data.length;
    await new Promise<void>((resolve, reject) => {
      this.stream.write(data, (error) => (error ? reject(streamError(error)) : resolve()));
    });
  }

  writeAt(): Promise<void> {
    return Promise.reject(new Error("a stream sink cannot write at a position"));
  }
}

/** Exit status of a process ended by SIGPIPE, as `yes | head` leaves it: what scripts expect. */
export const CLOSED_PIPE_EXIT = ExitCode.closedPipe;

function streamError(error: Error): Error {
  if (systemErrorCode(error) !== "EPIPE" && systemErrorCode(error) !== "ERR_STREAM_DESTROYED") return error;
  // One line, no hint: the reader's own message (an import's refusal, say) is the one that matters.
  return new VmError("OUTPUT_CLOSED", "Standard output was closed before the export finished; stopped", {
    cause: error,
  });
}

export function fileError(
  error: unknown,
  path: string,
  written: number,
  expected: number | undefined,
): unknown {
  const code = systemErrorCode(error);
  if (code === "ENOSPC" || code === "EDQUOT") {
    const need = expected ? `; about ${formatBytes(expected)} are needed` : "";
    return new VmError(
      "NO_SPACE",
      `No space left on the device while writing ${path} (${formatBytes(written)} written${need})`,
      {
        hint: "Free some space or write elsewhere with --output PATH; nothing was left at the target path",
        cause: error,
      },
    );
  }
  if (code === "EACCES" || code === "EROFS" || code === "ENOENT" || code === "EISDIR") {
    return new VmError("OUTPUT_UNWRITABLE", `Cannot write ${path} (${code})`, {
      hint: "Choose a folder you can write to with --output PATH",
      cause: error,
    });
  }
  return error;
}

/**
 * Refuses to start writing when the folder's filesystem has less free space than `minimum`, the least
 * the file can take (a compressed size is only known at the end, so callers pass a floor no real image
 * goes under). Space that runs out later is still caught at the write, with the same error code.
 */
export async function ensureRoom(path: string, minimum: number, what: string): Promise<void> {
  let free: number;
  try {
    const fs = await statfs(dirname(path));
    free = fs.bavail * fs.bsize;
  } catch {
    return; // No folder yet or no statfs: the write itself will tell.
  }
  if (free >= minimum) return;
  throw new VmError(
    "NO_SPACE",
    `Not enough space to write ${path}: ${formatBytes(free)} free on its filesystem, and ${what} needs at least ${formatBytes(minimum)}`,
    {
      hint: "Free some space or write elsewhere with --output PATH; nothing was written",
    },
  );
}
