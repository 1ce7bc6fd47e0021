import type { Readable } from "node:stream";
import { VmError } from "../errors.ts";
import { readBody } from "./http.ts";
import {
  MANIFEST_ACCEPT,
  MediaType,
  parseIndexBytes,
  parseManifestBytes,
  sha256Digest,
  type Descriptor,
  type FetchedManifest,
} from "./oci.ts";
import { RegistrySession } from "./session.ts";

export type { Action } from "./auth.ts";
export type { ClientOptions } from "./session.ts";

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * The registry API (distribution spec 1.1) for one repository: manifests and blobs checked against their
 * digests, uploads with cross-repository mounts, referrers with the tag fallback. Authentication and the
 * requests themselves are the session's (session.ts).
 */
export class RegistryClient extends RegistrySession {
  private path(kind: "manifests" | "blobs" | "referrers", reference: string): string {
    return `/v2/${this.repository}/${kind}/${reference}`;
  }

  /** A manifest or index by tag or digest, its bytes checked against the digest; undefined when absent. */
  async manifest(reference: string): Promise<FetchedManifest | undefined> {
    const res = await this.send("GET", this.path("manifests", reference), {
      headers: { Accept: MANIFEST_ACCEPT },
      accept: [200, 404],
      what: `read the manifest of ${this.repository}:${reference}`,
    });
    if (res.status === 404) {
      res.body.resume();
      return undefined;
    }
    const bytes = await readBody(res, MAX_MANIFEST_BYTES);
    const where = `${this.registry}/${this.repository}${reference.startsWith("sha256:") ? "@" : ":"}${reference}`;
    const fetched = parseManifestBytes(bytes, res.headers["content-type"], where);
    const claimed = res.headers["docker-content-digest"];
    const expected = reference.startsWith("sha256:")
      ? reference
      : typeof claimed === "string"
        ? claimed
        : undefined;
    if (expected && expected !== fetched.digest) throw digestMismatch(where, expected, fetched.digest);
    return fetched;
  }

  async blobExists(digest: string): Promise<boolean> {
    const res = await this.send("HEAD", this.path("blobs", digest), {
      accept: [200, 404],
      what: `check for blob ${digest} in ${this.repository}`,
    });
    res.body.resume();
    return res.status === 200;
  }

  /** A small blob, whole, checked against its digest. */
  async blob(digest: string, max: number): Promise<Buffer> {
    const res = await this.send("GET", this.path("blobs", digest), {
      accept: [200],
      what: `read blob ${digest} of ${this.repository}`,
    });
    const bytes = await readBody(res, max);
    const actual = sha256Digest(bytes);
    if (actual !== digest)
      throw digestMismatch(`blob ${digest} of ${this.registry}/${this.repository}`, digest, actual);
    return bytes;
  }

  /**
   * Uploads a blob unless the repository has it; tries a cross-repository mount from `from` first.
   * Returns what it did.
   */
  async putBlob(digest: string, data: Buffer, from?: string): Promise<"present" | "mounted" | "uploaded"> {
    if (await this.blobExists(digest)) return "present";
    const started = await this.startUpload(digest, from);
    if (started === "mounted") return "mounted";
    await this.finishUpload(started, digest, data, data.length);
    return "uploaded";
  }

  /**
   * Streams a blob of known size and digest in one request (the registry checks the digest when it takes
   * the upload). The caller checks blobExists first; the stream is read once, so there is no retry.
   */
  async putBlobStream(digest: string, size: number, data: Readable): Promise<void> {
    const started = await this.startUpload(digest);
    if (started === "mounted") {
      data.resume();
      return;
    }
    await this.finishUpload(started, digest, data, size);
  }

  private async startUpload(digest: string, from?: string): Promise<URL | "mounted"> {
    const query =
      from && from !== this.repository
        ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`
        : "";
    const started = await this.send("POST", `/v2/${this.repository}/blobs/uploads/${query}`, {
      accept: [201, 202],
      what: `start an upload to ${this.repository}`,
    });
    started.body.resume();
    if (started.status === 201) return "mounted";
    const location = started.headers.location;
    if (!location)
      throw new VmError("REGISTRY_REQUEST_FAILED", `${this.registry} started an upload without saying where`);
    const target = new URL(location, started.url);
    target.searchParams.set("digest", digest);
    return target;
  }

  private async finishUpload(
    target: URL,
    digest: string,
    data: Buffer | Readable,
    size: number,
  ): Promise<void> {
    const done = await this.send("PUT", target.href, {
      headers: { "Content-Type": "application/octet-stream" },
      body: data,
      length: size,
      accept: [201, 204],
      what: `upload blob ${digest} to ${this.repository}`,
    });
    done.body.resume();
  }

  /**
   * Puts a manifest under a tag or its digest; checks the digest the registry reports. Returns the digest
   * and, when the registry processed the manifest's `subject` (OCI 1.1 referrers), that subject's digest.
   */
  async putManifest(
    reference: string,
    mediaType: string,
    bytes: Buffer,
  ): Promise<{ digest: string; subject: string | undefined }> {
    const digest = sha256Digest(bytes);
    const res = await this.send("PUT", this.path("manifests", reference), {
      headers: { "Content-Type": mediaType },
      body: bytes,
      accept: [201, 202, 204],
      what: `store a manifest as ${this.repository}:${reference}`,
    });
    res.body.resume();
    const reported = res.headers["docker-content-digest"];
    if (typeof reported === "string" && reported !== digest)
      throw digestMismatch(
        `the manifest stored as ${this.registry}/${this.repository}:${reference}`,
        digest,
        reported,
      );
    const subject = res.headers["oci-subject"];
    return { digest, subject: typeof subject === "string" ? subject : undefined };
  }

  /**
   * The manifests that name `digest` as their subject: through the referrers API, or where the registry
   * has none (404), through the distribution spec's `sha256-<hex>` tag schema index.
   */
  async referrers(digest: string): Promise<{ descriptors: Descriptor[]; via: "api" | "tag" }> {
    const res = await this.send("GET", this.path("referrers", digest), {
      headers: { Accept: MediaType.ociIndex },
      accept: [200, 404, 400, 405],
      what: `list what refers to ${digest} in ${this.repository}`,
    });
    const contentType = String(res.headers["content-type"] ?? "");
    if (res.status === 200 && contentType.startsWith(MediaType.ociIndex)) {
      const index = parseIndexBytes(await readBody(res, MAX_MANIFEST_BYTES), `the referrers of ${digest}`);
      return { descriptors: index.manifests, via: "api" };
    }
    res.body.resume();
    const fallback = await this.manifest(fallbackTag(digest));
    if (!fallback) return { descriptors: [], via: "tag" };
    if (fallback.kind !== "index")
      throw new VmError(
        "REGISTRY_MANIFEST_INVALID",
        `${this.registry}/${this.repository}:${fallbackTag(digest)} is not an index of referrers`,
      );
    return { descriptors: fallback.index.manifests, via: "tag" };
  }
}

/** The tag the distribution spec's referrers fallback keeps an index of `digest`'s referrers under. */
export function fallbackTag(digest: string): string {
  return digest.replace(":", "-");
}

function digestMismatch(what: string, expected: string, actual: string): VmError {
  return new VmError(
    "REGISTRY_DIGEST_MISMATCH",
    `${what} does not match its digest: expected ${expected}, got ${actual}`,
    {
      hint: "The registry, or something between it and you, changed the content; nothing was registered",
    },
  );
}
