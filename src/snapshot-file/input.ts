import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { PassThrough, type Readable } from "node:stream";
import { VmError, systemErrorCode } from "../errors.ts";

/** The snapshot file a command reads: a path, or "-" for standard input. Shared by import and verify. */
export async function openInput(
  input: string,
  cwd: string,
  stdin: Readable,
): Promise<{ stream: Readable; size: number | undefined; path: string }> {
  if (input === "-") return { stream: stdin, size: undefined, path: "-" };
  const path = input.startsWith("/") ? input : `${cwd}/${input}`;
  try {
    const info = await stat(path);
    if (!info.isFile()) throw new VmError("INPUT_NOT_A_FILE", `${path} is not a file`);
    return { stream: createReadStream(path, { highWaterMark: 1024 * 1024 }), size: info.size, path };
  } catch (error) {
    if (systemErrorCode(error) === "ENOENT") {
      throw new VmError("INPUT_NOT_FOUND", `${path} does not exist`, {
        hint: "Check the path of the snapshot file",
      });
    }
    throw error;
  }
}

/** Counts bytes read from the file, for progress. */
export function counting(stream: Readable, onBytes: (n: number) => void): Readable {
  const out = new PassThrough({ highWaterMark: 1024 * 1024 });
  stream.on("data", (chunk: Buffer) => onBytes(chunk.length));
  stream.on("error", (error) => out.destroy(error));
  // A reader that stops early (the image is already here) destroys `out`: stop reading the file too.
  out.on("close", () => stream.destroy());
  stream.pipe(out);
  return out;
}
