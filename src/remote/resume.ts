import type { Readable } from "node:stream";
import { VmError, systemErrorCode } from "../errors.ts";

/**
 * How far a download's stream reads ahead: about one network read. Reading a stream hands over all it
 * has buffered as one buffer, so a deeper buffer joined its 64 KiB reads into a fresh copy each time,
 * garbage that held an import from S3 about 10 MB higher.
 */
export const DOWNLOAD_BUFFER = 64 * 1024;

/** A body opened again after a lost connection, and the byte of the file it starts at. */
export interface Reopened {
  body: Readable;
  /** The requested byte when the server resumed there; 0 when it sends the whole file again. */
  start: number;
}

export interface ResumeOptions {
  /** The file as it may be shown in messages. */
  shown: string;
  host: string;
  /** The whole file's size. */
  size: number | undefined;
  /** The byte of the file the first body starts at (a download continued from an earlier run). */
  startAt?: number;
  retries: number;
  backoffMs: number;
  /** Opens the file again from byte `from`; throws a VmError for an answer that is not a retry's. */
  reopen: (from: number, attempt: number) => Promise<Reopened>;
  onNote: ((text: string) => void) | undefined;
}

/**
 * The bytes of a remote file as one sequence, whatever happens to the connection: when it is lost, the
 * file is opened again at the byte reached (or, when the server cannot resume, from the start, skipping
 * what already passed), a bounded number of times with a doubling backoff. What reads the sequence sees
 * one continuous file, so the hashes it keeps go on as if nothing happened.
 */
export async function* resumableBytes(first: Readable, options: ResumeOptions): AsyncGenerator<Buffer> {
  const { size, retries } = options;
  let body = first;
  let received = options.startAt ?? 0;
  /** Bytes of the current body to drop: a restart from zero after `received` had passed. */
  let skip = 0;
  for (let attempt = 0; ;) {
    try {
      for await (const chunk of body as AsyncIterable<Buffer>) {
        if (skip >= chunk.length) {
          skip -= chunk.length;
          continue;
        }
        const fresh = skip ? chunk.subarray(skip) : chunk;
        skip = 0;
        received += fresh.length;
        yield fresh;
      }
      if (size === undefined || received >= size) return;
      throw Object.assign(new Error("the connection closed before the end of the file"), {
        code: "ECONNRESET",
      });
    } catch (error) {
      body.destroy();
      if (!transient(error) || attempt >= retries) throw lost(options.shown, received, size, error, attempt);
      for (;;) {
        attempt++;
        await new Promise((resolve) => setTimeout(resolve, options.backoffMs * 2 ** (attempt - 1)));
        try {
          const next = await options.reopen(received, attempt);
          body = next.body;
          skip = received - next.start;
          if (next.start > 0)
            options.onNote?.(
              `The connection to ${options.host} was lost at ${formatAt(received, size)}; resumed there (${attempt}/${retries})\n`,
            );
          break;
        } catch (retryError) {
          // Unreachable for now: the next round waits longer and tries again.
          if (!transient(retryError) || attempt >= retries)
            throw lost(options.shown, received, size, retryError, attempt);
        }
      }
    }
  }
}

/** Errors a resume can cure: the connection, not the server's answer. */
export function transient(error: unknown): boolean {
  if (error instanceof VmError) return error.code === "REMOTE_UNREACHABLE";
  const code = systemErrorCode(error) ?? "";
  return (
    /ECONNRESET|EPIPE|ETIMEDOUT|ECONNREFUSED|ECONNABORTED|ERR_STREAM_PREMATURE_CLOSE|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH/.test(
      code,
    ) || /aborted|socket hang up|premature close/i.test((error as Error | undefined)?.message ?? "")
  );
}

function lost(
  shown: string,
  received: number,
  size: number | undefined,
  error: unknown,
  attempts: number,
): unknown {
  if (error instanceof VmError && error.code !== "REMOTE_UNREACHABLE") return error;
  const why = error instanceof Error ? error.message : String(error);
  return new VmError(
    "REMOTE_CONNECTION_LOST",
    `The download of ${shown} broke at ${formatAt(received, size)}${attempts ? ` and could not be resumed (${attempts} tries)` : ""}: ${why}`,
    { hint: "Check the network and run the command again", cause: error },
  );
}

export function changed(shown: string, before: string, now: string): VmError {
  return new VmError(
    "REMOTE_CHANGED",
    `${shown} changed while it was downloaded (ETag ${before}, now ${now})`,
    {
      hint: "Someone replaced the file: run the command again to read the new one from the start",
    },
  );
}

export function formatAt(received: number, size: number | undefined): string {
  return size ? `${Math.floor((received / size) * 100)}% (byte ${received} of ${size})` : `byte ${received}`;
}
