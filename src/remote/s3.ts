import { Readable } from "node:stream";
import type { GetObjectCommandOutput, S3Client, S3ClientConfig } from "@aws-sdk/client-s3";
import { VmError, systemErrorCode } from "../errors.ts";
import { changed, DOWNLOAD_BUFFER, resumableBytes } from "./resume.ts";

// s3:// snapshot files through the AWS SDK, which is loaded only here and only when an s3:// path is used
// (it is large: other commands' start-up must not pay for it). Credentials, region and endpoint come from
// the SDK's standard chain (environment, ~/.aws/credentials and config, AWS_PROFILE, SSO, IMDS,
// AWS_ENDPOINT_URL(_S3)); --endpoint and --path-style are for S3-compatible stores.

export interface S3Location {
  bucket: string;
  key: string;
}

/** How vm talks to S3 (or an S3-compatible store). */
export interface S3Options {
  /** --endpoint: an S3-compatible store's URL (MinIO, R2, Ceph, ...). */
  endpoint?: string | undefined;
  /** --path-style: bucket in the path, not the host name (most S3-compatible stores want this). */
  pathStyle?: boolean | undefined;
  env: NodeJS.ProcessEnv;
}

export function isS3Url(input: string): boolean {
  return /^s3:\/\//i.test(input);
}

/** `s3://bucket/key/of/the/file` → bucket and key; anything else is refused with the form to use. */
export function parseS3Url(input: string): S3Location {
  const match = /^s3:\/\/([^/]+)\/(.+)$/i.exec(input);
  if (!match || match[2]!.endsWith("/"))
    throw new VmError("USAGE", `${input} is not an s3:// path of a file`, {
      hint: "Write it as s3://BUCKET/KEY, e.g. s3://company-vms/vibe-2024-10.snapshot.tar.gz",
    });
  return { bucket: match[1]!, key: match[2]! };
}

export function showS3(location: S3Location): string {
  return `s3://${location.bucket}/${location.key}`;
}

/** The endpoint in use when it is not AWS's own: --endpoint, else the SDK's environment variables. */
export function customEndpoint(options: S3Options): string | undefined {
  return options.endpoint || options.env.AWS_ENDPOINT_URL_S3 || options.env.AWS_ENDPOINT_URL || undefined;
}

type Sdk = typeof import("@aws-sdk/client-s3");

/**
 * The SDK, loaded on first use. It is CommonJS: Node's own import gives its named exports, the bundle's
 * chunk only a default export holding them.
 */
export async function loadSdk(): Promise<Sdk> {
  const loaded = (await import("@aws-sdk/client-s3")) as Sdk & { default?: Sdk };
  return typeof loaded.S3Client === "function" ? loaded : loaded.default!;
}

/** An S3 client, the SDK loaded on first use. */
export async function s3Client(options: S3Options): Promise<S3Client> {
  const { S3Client } = await loadSdk();
  const endpoint = customEndpoint(options);
  const host = endpoint ? hostOf(endpoint) : undefined;
  // A bucket cannot be a sub-domain of an IP address or of localhost: such endpoints are path-style.
  const pathStyle =
    options.pathStyle === true ||
    (host !== undefined && /^(localhost|\d+\.\d+\.\d+\.\d+|\[.*\])$/.test(host));
  const config: S3ClientConfig = {
    followRegionRedirects: true,
    ...(options.endpoint ? { endpoint: options.endpoint } : {}),
    ...(pathStyle ? { forcePathStyle: true } : {}),
    // Stores other than AWS reject the SDK's newer default (a CRC32 checksum on every request).
    ...(endpoint
      ? { requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED" }
      : {}),
  };
  const client = new S3Client(config);
  // The SDK needs a region even for stores that ignore it. None configured (no AWS_REGION, none in
  // ~/.aws/config): us-east-1, which AWS redirects from when the bucket is elsewhere (followRegionRedirects).
  try {
    await client.config.region();
    return client;
  } catch {
    client.destroy();
    return new S3Client({ ...config, region: "us-east-1" });
  }
}

function hostOf(endpoint: string): string | undefined {
  try {
    return new URL(endpoint).hostname;
  } catch {
    return undefined;
  }
}

export interface S3Download {
  stream: Readable;
  size: number | undefined;
  etag: string | undefined;
  /** The byte the stream starts at: `from.offset` when the object is still the one begun, else 0. */
  startedAt: number;
}

/**
 * An s3:// file as one stream of its bytes: a GetObject, and when the connection drops, a ranged GetObject
 * from the byte reached with If-Match on the first answer's ETag, so a replaced object is never spliced
 * onto the old one's start (S3 answers 412, said as REMOTE_CHANGED).
 */
export async function openS3Download(
  location: S3Location,
  options: S3Options & {
    retries?: number;
    backoffMs?: number;
    onNote?: (text: string) => void;
    /** Continue an earlier run's download from this byte, if the object still has this ETag. */
    from?: { offset: number; etag: string } | undefined;
  },
): Promise<S3Download> {
  const { GetObjectCommand } = await loadSdk();
  const client = await s3Client(options);
  const shown = showS3(location);
  const get = async (extra: { Range?: string; IfMatch?: string }): Promise<GetObjectCommandOutput> => {
    try {
      return await client.send(
        new GetObjectCommand({ Bucket: location.bucket, Key: location.key, ...extra }),
      );
    } catch (error) {
      throw s3Error(error, location, options, "read");
    }
  };
  let first: GetObjectCommandOutput | undefined;
  let startedAt = 0;
  let size: number | undefined;
  if (options.from) {
    try {
      first = await get({ Range: `bytes=${options.from.offset}-`, IfMatch: options.from.etag });
      const range = /^bytes (\d+)-\d+\/(\d+)$/.exec(first.ContentRange ?? "");
      if (range && Number(range[1]) === options.from.offset) {
        startedAt = options.from.offset;
        size = Number(range[2]);
      } else {
        (first.Body as Readable).destroy();
        first = undefined;
      }
    } catch (error) {
      // Replaced since (If-Match fails with 412, before any range is looked at): read it whole.
      if (!(error instanceof VmError && error.code === "REMOTE_CHANGED")) throw error;
      first = undefined;
    }
  }
  if (!first) {
    first = await get({});
    size = first.ContentLength;
  }
  const etag = first.ETag;
  const bytes = resumableBytes(first.Body as Readable, {
    shown,
    host: customEndpoint(options) ?? "S3",
    size,
    startAt: startedAt,
    retries: options.retries ?? 5,
    backoffMs: options.backoffMs ?? 500,
    onNote: options.onNote,
    reopen: async (from) => {
      let next: GetObjectCommandOutput;
      try {
        next = await get({ Range: `bytes=${from}-`, ...(etag ? { IfMatch: etag } : {}) });
      } catch (error) {
        if (error instanceof VmError && error.code === "REMOTE_CHANGED")
          throw changed(shown, etag ?? "?", "another object");
        throw error;
      }
      if (etag && next.ETag && next.ETag !== etag) {
        (next.Body as Readable).destroy();
        throw changed(shown, etag, next.ETag);
      }
      const start = /^bytes (\d+)-/.exec(next.ContentRange ?? "")?.[1];
      return { body: next.Body as Readable, start: start === undefined ? 0 : Number(start) };
    },
  });
  const stream = Readable.from(bytes, { objectMode: false, highWaterMark: DOWNLOAD_BUFFER });
  stream.once("close", () => client.destroy());
  return { stream, size, etag, startedAt };
}

/** What an S3 failure means, in words, with what to do. */
export function s3Error(
  error: unknown,
  location: S3Location,
  options: S3Options,
  doing: "read" | "write",
): unknown {
  if (error instanceof VmError) return error;
  const e = error as { name?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const name = e.name ?? "";
  const status = e.$metadata?.httpStatusCode;
  const shown = showS3(location);
  const where = customEndpoint(options) ?? "AWS S3";
  if (name === "NoSuchBucket")
    return new VmError("REMOTE_NOT_FOUND", `The bucket ${location.bucket} does not exist on ${where}`, {
      hint: "Check the bucket's name (and --endpoint or AWS_ENDPOINT_URL for an S3-compatible store)",
      cause: error,
    });
  if (name === "NoSuchKey" || (name === "NotFound" && doing === "read") || status === 404)
    return new VmError("REMOTE_NOT_FOUND", `${shown} does not exist`, {
      hint: `Check the key: aws s3 ls s3://${location.bucket}/`,
      cause: error,
    });
  if (name === "PreconditionFailed" || status === 412)
    return new VmError("REMOTE_CHANGED", `${shown} changed while it was read`, { cause: error });
  if (name === "CredentialsProviderError" || /Could not load credentials/i.test(e.message ?? ""))
    return new VmError("REMOTE_DENIED", `No AWS credentials were found to ${doing} ${shown}`, {
      hint: "Configure them as the AWS CLI does: aws configure (or AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
      cause: error,
    });
  if (
    /AccessDenied|Forbidden|InvalidAccessKeyId|SignatureDoesNotMatch|ExpiredToken|InvalidToken/.test(name) ||
    status === 403
  )
    return new VmError(
      "REMOTE_DENIED",
      `${where} refused to let vm ${doing} ${shown} (${name || `HTTP ${status}`})`,
      {
        hint: `Check the credentials in use (aws sts get-caller-identity) and their access to s3://${location.bucket}`,
        cause: error,
      },
    );
  const code = systemErrorCode(error) ?? systemErrorCode((error as { cause?: unknown }).cause) ?? "";
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/.test(code))
    return new VmError(
      "REMOTE_TLS_FAILED",
      `The TLS certificate of ${where} is not trusted: ${e.message ?? code}`,
      {
        hint: "Point NODE_EXTRA_CA_CERTS at the CA certificate that signed it (a PEM file), and run again",
        cause: error,
      },
    );
  if (/ECONNREFUSED|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|ETIMEDOUT/.test(code))
    return new VmError("REMOTE_UNREACHABLE", `Cannot reach ${where} (${code})`, {
      hint: "Check the network, and --endpoint or AWS_ENDPOINT_URL for an S3-compatible store",
      cause: error,
    });
  return new VmError(
    "REMOTE_REQUEST_FAILED",
    `${where} could not ${doing} ${shown}: ${name || "error"}${e.message ? ` (${e.message})` : ""}`,
    { hint: "Try again; if it persists, check the store's logs and the credentials' access", cause: error },
  );
}
