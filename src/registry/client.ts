import type { Readable } from "node:stream";
import { VmError, isVmError } from "../errors.ts";
import { parseChallenges, scopeFor, tokenRequestUrl, type Challenge } from "./challenge.ts";
import { resolveCredentials, type Credentials } from "./credentials.ts";
import { RegistryTransport, notTls, readBody, registryErrors, type HttpResponse } from "./http.ts";
import {
  MANIFEST_ACCEPT,
  MediaType,
  parseIndexBytes,
  parseManifestBytes,
  sha256Digest,
  type Descriptor,
  type FetchedManifest,
} from "./oci.ts";
import { apiOrigin, isLoopback } from "./reference.ts";

export type Action = "pull" | "push";

export interface ClientOptions {
  env: NodeJS.ProcessEnv;
  actions: Action[];
  transport?: RegistryTransport;
  /** Found once for the registry; tests and callers that already hold them pass them in. */
  credentials?: Credentials | undefined;
}

interface SendOptions {
  headers?: Record<string, string>;
  body?: Buffer | Readable;
  length?: number;
  /** Statuses handed back instead of raised (401 and 403 are always raised). */
  accept: number[];
  /** What is being done, for messages: "read the manifest of team/vibe:1". */
  what: string;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * The registry API (distribution spec 1.1) for one repository, with the auth docker users already have:
 * credentials from docker's config (credential helpers, credsStore, auths), answered to whichever
 * challenge the registry sends: Basic, or Bearer tokens from its token service for this repository's scope.
 * HTTPS always, except loopback registries, which may answer plain HTTP (as docker engines allow).
 */
export class RegistryClient {
  readonly registry: string;
  readonly repository: string;
  private readonly options: ClientOptions;
  private readonly transport: RegistryTransport;
  private readonly ownTransport: boolean;
  private origin: string | undefined;
  private authorization: string | undefined;
  private credentials: Credentials | undefined | null = null;
  private authenticated = false;

  constructor(registry: string, repository: string, options: ClientOptions) {
    this.registry = registry;
    this.repository = repository;
    this.options = options;
    this.ownTransport = !options.transport;
    this.transport = options.transport ?? new RegistryTransport();
    if ("credentials" in options) this.credentials = options.credentials;
  }

  close(): void {
    if (this.ownTransport) this.transport.close();
  }

  /** Where credentials came from, for messages ("anonymous" when none). */
  async credentialSource(): Promise<string> {
    const credentials = await this.creds();
    return credentials ? credentials.source : "anonymous";
  }

  private async creds(): Promise<Credentials | undefined> {
    if (this.credentials === null)
      this.credentials = await resolveCredentials(this.registry, this.options.env);
    return this.credentials;
  }

  /** The registry's origin: https, or for a loopback registry that does not speak TLS, http. */
  private async base(): Promise<string> {
    if (this.origin) return this.origin;
    const secure = apiOrigin(this.registry, "https");
    if (!isLoopback(this.registry)) return (this.origin = secure);
    try {
      const res = await this.transport.send({ method: "GET", url: new URL("/v2/", secure) });
      res.body.resume();
      return (this.origin = secure);
    } catch (error) {
      if (!notTls(error)) throw error;
      return (this.origin = apiOrigin(this.registry, "http"));
    }
  }

  /**
   * Answers the registry's challenge once, before the first real request (uploads cannot be resent): a
   * registry that wants credentials vm does not have fails here, with what to run.
   */
  async authenticate(): Promise<void> {
    if (this.authenticated) return;
    const origin = await this.base();
    const res = await this.transport.send({ method: "GET", url: new URL("/v2/", origin) });
    res.body.resume();
    if (res.status === 401) await this.answer(res);
    else if (res.status !== 200)
      throw new VmError(
        "REGISTRY_REQUEST_FAILED",
        `${this.registry} is not a registry vm can use: GET /v2/ answered HTTP ${res.status}`,
        {
          hint: "Check the address: it must be an OCI distribution (docker) registry",
        },
      );
    this.authenticated = true;
  }

  private async answer(res: HttpResponse): Promise<void> {
    const header = res.headers["www-authenticate"];
    const challenges = parseChallenges(Array.isArray(header) ? header.join(", ") : (header ?? ""));
    const bearer = challenges.find((c) => c.scheme === "bearer");
    const basic = challenges.find((c) => c.scheme === "basic");
    const credentials = await this.creds();
    if (bearer) {
      this.authorization = `Bearer ${await this.token(bearer, credentials)}`;
      return;
    }
    if (basic) {
      if (!credentials || credentials.kind !== "basic") throw this.denied(401, credentials);
      const pair = Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64");
      this.authorization = `Basic ${pair}`;
      return;
    }
    throw new VmError("REGISTRY_AUTH_FAILED", `${this.registry} asks for authentication vm does not speak`, {
      hint: "vm answers Basic and Bearer challenges; check the registry's auth configuration",
    });
  }

  private async token(challenge: Challenge, credentials: Credentials | undefined): Promise<string> {
    const scopes = [scopeFor(this.repository, this.options.actions)];
    const href = tokenRequestUrl(challenge, scopes);
    if (!href)
      throw new VmError(
        "REGISTRY_AUTH_FAILED",
        `${this.registry} asks for a token but names no token service vm can use`,
        {
          hint: "Check the registry's auth configuration (its Bearer realm must be an http(s) URL)",
        },
      );
    const url = new URL(href);
    // Credentials never go in the clear to a token service off this machine.
    if (credentials && url.protocol === "http:" && !isLoopback(url.host))
      throw new VmError(
        "REGISTRY_AUTH_FAILED",
        `${this.registry} asks for credentials over plain HTTP (${url.origin})`,
        {
          hint: "vm sends credentials only over HTTPS (or to a loopback token service); check the registry's auth realm",
        },
      );
    let res: HttpResponse;
    if (credentials?.kind === "token") {
      // An identity token is an OAuth2 refresh token (docker login with a token-issuing registry).
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: credentials.identityToken,
        service: challenge.params.service ?? "",
        scope: scopes.join(" "),
        client_id: "vm",
      });
      res = await this.transport.send({
        method: "POST",
        url: new URL(url.origin + url.pathname),
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: Buffer.from(form.toString()),
      });
    } else {
      const headers: Record<string, string> = {};
      if (credentials) {
        headers.Authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString("base64")}`;
      }
      res = await this.transport.send({ method: "GET", url, headers });
    }
    if (res.status === 401 || res.status === 403) {
      res.body.resume();
      throw this.denied(res.status, credentials);
    }
    const text = (await readBody(res, 1024 * 1024)).toString("utf8");
    if (res.status !== 200)
      throw new VmError(
        "REGISTRY_AUTH_FAILED",
        `The token service of ${this.registry} answered HTTP ${res.status}`,
        {
          hint: `Try again; if it persists, check \`docker login ${this.registry}\``,
        },
      );
    let body: { token?: unknown; access_token?: unknown };
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      body = {};
    }
    const token = typeof body.token === "string" ? body.token : body.access_token;
    if (typeof token !== "string" || token === "")
      throw new VmError("REGISTRY_AUTH_FAILED", `The token service of ${this.registry} gave no token`);
    return token;
  }

  private denied(status: number, credentials: Credentials | undefined): VmError {
    const doing = this.options.actions.includes("push") ? "push to" : "pull from";
    const who = credentials ? `with the credentials from ${credentials.source}` : "without credentials";
    return new VmError(
      "REGISTRY_AUTH_FAILED",
      `${this.registry} refused to let vm ${doing} ${this.repository} ${who} (HTTP ${status})`,
      {
        hint: credentials
          ? `Check the account's access to ${this.repository}, or log in again: docker login ${this.registry}`
          : `Log in first: docker login ${this.registry}`,
      },
    );
  }

  /**
   * One authenticated request; a 401 with a resendable body gets a fresh token and one more try. The
   * registry's Authorization goes only to its own origin (as docker sends it only where it answered the
   * challenge): an upload Location elsewhere, or over http where the registry is https, goes without it.
   */
  private async send(method: string, path: string, options: SendOptions): Promise<HttpResponse> {
    await this.authenticate();
    const origin = await this.base();
    const url = new URL(path, origin);
    // Normalized by URL: `host:443` over https is `host`.
    const home = new URL(origin).origin;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { ...options.headers };
      if (this.authorization && url.origin === home) headers.Authorization = this.authorization;
      let res: HttpResponse;
      try {
        res = await this.transport.send({
          method,
          url,
          headers,
          ...(options.body ? { body: options.body } : {}),
          ...(options.length !== undefined ? { length: options.length } : {}),
        });
      } catch (error) {
        if (isVmError(error)) throw error;
        throw new VmError(
          "REGISTRY_UNREACHABLE",
          `${options.what} on ${this.registry} failed: ${(error as Error).message}`,
          {
            cause: error,
          },
        );
      }
      // Only the registry's own challenge is answered: another origin's could name any token service.
      const own = res.url.origin === home;
      if (res.status === 401 && attempt === 0 && own && (!options.body || Buffer.isBuffer(options.body))) {
        res.body.resume();
        await this.answer(res);
        continue;
      }
      if (options.accept.includes(res.status)) return res;
      const errors = await registryErrors(res);
      if (res.status === 401 || res.status === 403) throw this.denied(res.status, await this.creds());
      const said = errors.map((e) => e.message || e.code).join("; ");
      if (res.status === 404)
        throw new VmError(
          "REGISTRY_NOT_FOUND",
          `${this.registry} has no ${options.what.replace(/^read /, "")}${said ? ` (${said})` : ""}`,
          {
            hint: "Check the reference: registry/repository:tag",
          },
        );
      throw new VmError(
        "REGISTRY_REQUEST_FAILED",
        `${this.registry} could not ${options.what}: HTTP ${res.status}${said ? ` (${said})` : ""}`,
        { hint: "Try again; if it persists, check the registry's logs" },
      );
    }
  }

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
