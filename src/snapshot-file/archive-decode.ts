import type { Readable } from "node:stream";
import { VmError } from "../errors.ts";
import { detectCompression, ZSTD_WINDOW_LOG_MAX, type Compression } from "../lib/codec.ts";
import { invalidArchive } from "./format.ts";

/** Reads the first bytes to tell gzip, zstd and plain tar apart, then hands back a stream of all of it. */
export async function sniff(input: Readable): Promise<{ compression: Compression; stream: Readable }> {
  const head = await new Promise<Buffer>((resolve, reject) => {
    const onReadable = () => {
      const chunk = input.read() as Buffer | null;
      if (chunk === null) return;
      cleanup();
      // Put back at once, in this handler: a stream that has just read its last chunk emits its end
      // before an awaiting caller runs, and a chunk put back after the end is lost.
      input.unshift(chunk);
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const cleanup = () => {
      input.off("readable", onReadable);
      input.off("end", onEnd);
      input.off("error", onError);
    };
    input.on("readable", onReadable);
    input.once("end", onEnd);
    input.once("error", onError);
  });
  if (head.length === 0) throw invalidArchive("The file is empty");
  return { compression: detectCompression(head), stream: input };
}

export function decodeError(error: unknown): unknown {
  if (error instanceof VmError) return error;
  const message = (error as Error).message ?? String(error);
  // zlib's and zstd's own errors carry codes (Z_DATA_ERROR, ZSTD_error_...), whatever their wording.
  const code = (error as { code?: unknown }).code;
  if (code === "ZSTD_error_frameParameter_windowTooLarge")
    return invalidArchive(
      `The snapshot file's zstd frames ask for a window larger than the ${2 ** (ZSTD_WINDOW_LOG_MAX - 20)} MiB vm decodes within its memory bound (written with zstd --long or --ultra -21/-22)`,
      "Recompress it with a standard level: zstd -d -c FILE | zstd -19 -o NEW.snapshot.tar.zst",
    );
  if (typeof code === "string" && /^(Z_|ZSTD_)/.test(code))
    return invalidArchive(`The snapshot file cannot be read: ${message} (${code})`);
  if (
    /incorrect (header|data|length) check|invalid|unexpected end|Unknown frame|corrupt|Z_DATA_ERROR|Z_BUF_ERROR|ZSTD|truncated|header/i.test(
      message,
    )
  ) {
    return invalidArchive(`The snapshot file cannot be read: ${message}`);
  }
  return error;
}
