import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { PassThrough, type Readable } from "node:stream";
import { ExitCode, VmError, isVmError, systemErrorCode } from "../errors.ts";
import { PartialDownload } from "../remote/partial.ts";

/** How a snapshot file at an http(s) URL or an s3:// path is read. */
export interface RemoteOptions {
  /** An Authorization header value for the URL's server (--authorization, VM_HTTP_AUTHORIZATION). */
  authorization?: string | undefined;
  /** s3://: an S3-compatible store's URL (--endpoint). */
  endpoint?: string | undefined;
  /** s3://: the bucket in the path (--path-style). */
  pathStyle?: boolean | undefined;
  /** The environment the AWS SDK's credential chain reads (the process's when absent). */
  env?: NodeJS.ProcessEnv;
  /** What changes how the download goes (no Range support, a resume), for stderr. */
  onNote?: (text: string) => void;
}

/** Whether the input names a file on a web server or in object storage rather than a path. */
export function isUrlInput(input: string): boolean {
  return /^(https?|s3):\/\//i.test(input);
}

export interface Input {
  stream: Readable;
  size: number | undefined;
  path: string;
  /**
   * Told how the command that read the file ended (an error, or none): a download's kept bytes go when it
   * succeeded or the file proved damaged, and stay for the next run when it was interrupted.
   */
  settle?: (error?: unknown) => Promise<void>;
}

/** Runs `read` on the input, then tells it how that ended (see Input.settle). */
export async function settled<T>(input: Input, read: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await read();
  } catch (error) {
    await input.settle?.(error);
    throw error;
  }
  await input.settle?.();
  return result;
}

function settleWith(partial: PartialDownload): (error?: unknown) => Promise<void> {
  return async (error) => {
    if (error === undefined || (isVmError(error) && error.exitCode === ExitCode.integrity))
      await partial.discard();
  };
}

/**
 * The snapshot file a command reads: a path, "-" for standard input, an http(s) URL or an s3:// path
 * (streamed, and resumed where the connection drops: remote/download.ts, remote/s3.ts). Shared by import, verify, inspect and scan.
 */
export async function openInput(
  input: string,
  cwd: string,
  stdin: Readable,
  remote: RemoteOptions = {},
): Promise<Input> {
  if (input === "-") return { stream: stdin, size: undefined, path: "-" };
  if (/^s3:\/\//i.test(input)) {
    const { openS3Download, parseS3Url, showS3 } = await import("../remote/s3.ts");
    const location = parseS3Url(input);
    const partial = await PartialDownload.open(remote.env ?? process.env, showS3(location));
    const download = await openS3Download(location, {
      endpoint: remote.endpoint,
      pathStyle: remote.pathStyle,
      env: remote.env ?? process.env,
      from: partial.from,
      ...(remote.onNote ? { onNote: remote.onNote } : {}),
    });
    return {
      stream: partial.stream(download, remote.onNote),
      size: download.size,
      path: showS3(location),
      settle: settleWith(partial),
    };
  }
  if (isUrlInput(input)) {
    const { openDownload, displayUrl } = await import("../remote/download.ts");
    const url = new URL(input);
    const partial = await PartialDownload.open(remote.env ?? process.env, displayUrl(url));
    const download = await openDownload({
      url,
      authorization: remote.authorization,
      from: partial.from,
      ...(remote.onNote ? { onNote: remote.onNote } : {}),
    });
    return {
      stream: partial.stream(download, remote.onNote),
      size: download.size,
      path: displayUrl(url),
      settle: settleWith(partial),
    };
  }
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
