import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { isVmError, type VmError } from "../errors.ts";
import { RegistryClient, fallbackTag, type ClientOptions } from "./client.ts";
import type { Credentials } from "./credentials.ts";
import { CERTS_DIR, RegistryTransport, type HttpRequest, type HttpResponse } from "./http.ts";
import { MANIFEST_ACCEPT, MediaType, sha256Digest } from "./oci.ts";
import {
  onCleanup,
  selfSigned,
  serve,
  tempDir,
  transport,
  type Handler,
  type Seen,
  type TestServer,
} from "./testing/server.ts";

/** A client for team/vibe on `host`, anonymous unless credentials are given (docker's config is never read). */
function client(host: string, options: Partial<ClientOptions> = {}): RegistryClient {
  return new RegistryClient(host, REPO, {
    env: {},
    actions: ["pull"],
    credentials: undefined,
    transport: transport(),
    ...options,
  });
}

/** The VmError a promise rejected with, checked to be of `code`; fails the test when it resolves. */
async function failure(promise: Promise<unknown>, code: VmError["code"]): Promise<VmError> {
  const error: unknown = await promise.then(
    () => assert.fail("resolved"),
    (thrown: unknown) => thrown,
  );
  assert.ok(isVmError(error, code), String(error));
  return error;
}

const REPO = "team/vibe";
const PASSWORD = "s3cret-pa55";
const alice: Credentials = { kind: "basic", username: "alice", password: PASSWORD, source: "test" };
const ALICE_BASIC = `Basic ${Buffer.from(`alice:${PASSWORD}`).toString("base64")}`;

const layer = Buffer.from("layer bytes");
const config = Buffer.from('{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}');
const manifestBytes = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha256Digest(config), size: config.length },
    layers: [
      {
        mediaType: "application/vnd.oci.image.layer.v1.tar",
        digest: sha256Digest(layer),
        size: layer.length,
      },
    ],
  }),
);
const manifestDigest = sha256Digest(manifestBytes);
const indexBytes = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociIndex,
    manifests: [
      {
        mediaType: MediaType.ociManifest,
        digest: manifestDigest,
        size: manifestBytes.length,
        platform: { os: "linux", architecture: "amd64" },
      },
    ],
  }),
);

const json = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) =>
  res.writeHead(status, { "Content-Type": "application/json", ...headers }).end(JSON.stringify(body));
const notFound = (res: ServerResponse) =>
  json(res, 404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
const UNAUTHORIZED = { errors: [{ code: "UNAUTHORIZED", message: "authentication required" }] };
const challenge = (res: ServerResponse, header: string) =>
  json(res, 401, UNAUTHORIZED, { "WWW-Authenticate": header });
const sendManifest = (res: ServerResponse, bytes: Buffer, headers: Record<string, string> = {}) =>
  res.writeHead(200, { "Content-Type": MediaType.ociManifest, ...headers }).end(bytes);

/** The requests past GET /v2/, as "METHOD path". */
const calls = (server: TestServer) =>
  server.seen.filter((req) => req.path !== "/v2/").map((req) => `${req.method} ${req.path}`);

/** No message or hint of `error` holds the password. */
function noPassword(error: VmError): void {
  assert.ok(!error.message.includes(PASSWORD), error.message);
  assert.ok(!(error.hint ?? "").includes(PASSWORD), error.hint);
  assert.ok(!error.message.includes(ALICE_BASIC.slice(6)), error.message);
}

/**
 * A registry with a Bearer token service at /token on the same server: tokens are `t1`, `t2`, ... in the
 * order issued; `valid` says which the registry takes (by default every token it issued).
 */
async function bearerRegistry(
  options: {
    tokenField?: "token" | "access_token";
    /** Answers /token instead of issuing a token, when it returns true. */
    tokenAnswer?: (req: Seen, res: ServerResponse) => boolean;
    valid?: (token: string) => boolean;
    routes?: Handler;
  } = {},
): Promise<TestServer & { issued: string[] }> {
  const issued: string[] = [];
  const server = await serve((req, res) => {
    if (req.path === "/token") {
      if (options.tokenAnswer?.(req, res)) return;
      const token = `t${issued.length + 1}`;
      issued.push(token);
      json(res, 200, { [options.tokenField ?? "token"]: token, expires_in: 300 });
      return;
    }
    const token = /^Bearer (.*)$/.exec(req.headers.authorization ?? "")?.[1];
    if (!token || !issued.includes(token) || !(options.valid?.(token) ?? true)) {
      challenge(
        res,
        `Bearer realm="http://${req.headers.host}/token",service="test-registry",scope="repository:${REPO}:pull"`,
      );
      return;
    }
    if (req.path === "/v2/") json(res, 200, {});
    else if (options.routes) options.routes(req, res);
    else sendManifest(res, manifestBytes);
  });
  return Object.assign(server, { issued });
}

describe("registry client (registry/client.ts)", () => {
  describe("auth", () => {
    it("an open registry: GET /v2/ once, then requests without Authorization", async () => {
      const registry = await serve((req, res) => {
        if (req.path === "/v2/") json(res, 200, {});
        else sendManifest(res, manifestBytes);
      });
      const c = client(registry.host);
      assert.equal((await c.manifest("1"))?.digest, manifestDigest);
      assert.equal((await c.manifest("2"))?.digest, manifestDigest);
      assert.deepEqual(
        registry.seen.map((req) => `${req.method} ${req.path}`),
        ["GET /v2/", `GET /v2/${REPO}/manifests/1`, `GET /v2/${REPO}/manifests/2`],
      );
      for (const req of registry.seen) assert.equal(req.headers.authorization, undefined);
      assert.equal(await c.credentialSource(), "anonymous");
    });

    it("/v2/ answering neither 200 nor 401 is not a registry vm can use", async () => {
      const registry = await serve((_req, res) => res.writeHead(404).end("no"));
      const error = await failure(client(registry.host).manifest("1"), "REGISTRY_REQUEST_FAILED");
      assert.match(error.message, /GET \/v2\/ answered HTTP 404/);
      assert.deepEqual(calls(registry), [], "nothing asked past /v2/");
    });

    describe("Basic", () => {
      const basicRegistry = (accept: (authorization: string | undefined) => boolean, routes?: Handler) =>
        serve((req, res) => {
          if (!accept(req.headers.authorization)) challenge(res, 'Basic realm="Registry Realm"');
          else if (req.path === "/v2/") json(res, 200, {});
          else if (routes) routes(req, res);
          else sendManifest(res, manifestBytes);
        });

      it("without credentials: REGISTRY_AUTH_FAILED before any real request, its hint `docker login <registry>`", async () => {
        const registry = await basicRegistry((auth) => auth === ALICE_BASIC);
        const error = await failure(client(registry.host).manifest("1"), "REGISTRY_AUTH_FAILED");
        assert.match(error.message, /without credentials \(HTTP 401\)/);
        assert.ok(error.message.includes(registry.host) && error.message.includes(REPO), error.message);
        assert.ok(error.hint?.includes(`docker login ${registry.host}`), error.hint);
        assert.deepEqual(calls(registry), []);
      });

      it("an identity token cannot answer a Basic challenge", async () => {
        const registry = await basicRegistry((auth) => auth === ALICE_BASIC);
        const c = client(registry.host, {
          credentials: { kind: "token", identityToken: "refresh-me", source: "test" },
        });
        const error = await failure(c.manifest("1"), "REGISTRY_AUTH_FAILED");
        assert.ok(error.hint?.includes(`docker login ${registry.host}`), error.hint);
        assert.ok(!error.message.includes("refresh-me"), error.message);
      });

      it("with credentials: Authorization: Basic user:password on every request after the challenge", async () => {
        const registry = await basicRegistry((auth) => auth === ALICE_BASIC);
        const c = client(registry.host, { credentials: alice });
        assert.equal((await c.manifest("1"))?.kind, "manifest");
        assert.equal(await c.blobExists(sha256Digest(layer)), true);
        assert.deepEqual(
          registry.seen.map((req) => [`${req.method} ${req.path}`, req.headers.authorization]),
          [
            ["GET /v2/", undefined],
            [`GET /v2/${REPO}/manifests/1`, ALICE_BASIC],
            [`HEAD /v2/${REPO}/blobs/${sha256Digest(layer)}`, ALICE_BASIC],
          ],
        );
        assert.equal(await c.credentialSource(), "test");
      });

      it("a wrong password: one retry, then REGISTRY_AUTH_FAILED naming the source, never the password", async () => {
        const registry = await basicRegistry(() => false);
        const c = client(registry.host, { credentials: alice, actions: ["pull", "push"] });
        const error = await failure(c.manifest("1"), "REGISTRY_AUTH_FAILED");
        assert.match(
          error.message,
          /refused to let vm push to team\/vibe with the credentials from test \(HTTP 401\)/,
        );
        assert.ok(error.hint?.includes(`docker login ${registry.host}`), error.hint);
        noPassword(error);
        assert.deepEqual(calls(registry), [`GET /v2/${REPO}/manifests/1`, `GET /v2/${REPO}/manifests/1`]);
      });

      it("403 is REGISTRY_AUTH_FAILED at once (no retry), about the account's access, never the password", async () => {
        const registry = await basicRegistry(
          (auth) => auth === ALICE_BASIC,
          (_req, res) =>
            json(res, 403, {
              errors: [{ code: "DENIED", message: "requested access to the resource is denied" }],
            }),
        );
        const error = await failure(
          client(registry.host, { credentials: alice }).manifest("1"),
          "REGISTRY_AUTH_FAILED",
        );
        assert.match(error.message, /\(HTTP 403\)/);
        assert.ok(error.hint?.includes(`access to ${REPO}`), error.hint);
        noPassword(error);
        assert.deepEqual(calls(registry), [`GET /v2/${REPO}/manifests/1`]);
      });
    });

    describe("Bearer", () => {
      it("asks the token service with service, scope=repository:<repo>:pull,push and Basic credentials, once", async () => {
        const registry = await bearerRegistry();
        const c = client(registry.host, { credentials: alice, actions: ["pull", "push"] });
        await c.manifest("1");
        await c.manifest("2");
        const tokens = registry.seen.filter((req) => req.path === "/token");
        assert.equal(tokens.length, 1, "one token for the client's life");
        const [token] = tokens;
        assert.equal(token?.method, "GET");
        assert.equal(token?.query.get("service"), "test-registry");
        assert.deepEqual(token?.query.getAll("scope"), [`repository:${REPO}:pull,push`]);
        assert.equal(token?.headers.authorization, ALICE_BASIC);
        for (const req of registry.seen.filter((req) => req.path.startsWith(`/v2/${REPO}/`)))
          assert.equal(req.headers.authorization, "Bearer t1");
      });

      it("takes access_token as well as token; anonymous asks with no Authorization", async () => {
        for (const tokenField of ["token", "access_token"] as const) {
          const registry = await bearerRegistry({ tokenField });
          const fetched = await client(registry.host).manifest("1");
          assert.equal(fetched?.digest, manifestDigest, tokenField);
          const token = registry.seen.find((req) => req.path === "/token");
          assert.equal(token?.headers.authorization, undefined);
          assert.deepEqual(token?.query.getAll("scope"), [`repository:${REPO}:pull`]);
          assert.equal(registry.seen.at(-1)?.headers.authorization, "Bearer t1");
        }
      });

      it("identity-token credentials: the OAuth2 POST refresh_token form, no Basic header", async () => {
        const registry = await bearerRegistry({ tokenField: "access_token" });
        const c = client(registry.host, {
          credentials: { kind: "token", identityToken: "refresh-me", source: "test" },
          actions: ["pull", "push"],
        });
        await c.manifest("1");
        const token = registry.seen.find((req) => req.path === "/token");
        assert.equal(token?.method, "POST");
        assert.equal(token?.url, "/token", "the form, not the query, carries the parameters");
        assert.equal(token?.headers["content-type"], "application/x-www-form-urlencoded");
        assert.equal(token?.headers.authorization, undefined);
        const form = new URLSearchParams(token?.body.toString());
        assert.deepEqual(Object.fromEntries(form), {
          grant_type: "refresh_token",
          refresh_token: "refresh-me",
          service: "test-registry",
          scope: `repository:${REPO}:pull,push`,
          client_id: "vm",
        });
        assert.equal(registry.seen.at(-1)?.headers.authorization, "Bearer t1");
      });

      it("a plain-HTTP token realm off this machine gets no credentials: refused before any request to it", async () => {
        const registry = await serve((_req, res) =>
          challenge(res, 'Bearer realm="http://example.invalid/token",service="test-registry"'),
        );
        const sent: string[] = [];
        class Recording extends RegistryTransport {
          override send(request: HttpRequest): Promise<HttpResponse> {
            sent.push(request.url.href);
            return super.send(request);
          }
        }
        const recording = new Recording(tempDir());
        onCleanup(() => recording.close());
        const error = await failure(
          client(registry.host, { credentials: alice, transport: recording }).manifest("1"),
          "REGISTRY_AUTH_FAILED",
        );
        assert.match(error.message, /over plain HTTP \(http:\/\/example\.invalid\)/);
        noPassword(error);
        assert.deepEqual(
          sent.filter((href) => !href.startsWith(`https://${registry.host}/`)),
          [`http://${registry.host}/v2/`],
          "only the registry's /v2/ was asked (after the https probe)",
        );
      });

      it("a token service's 401, other status, or answer without a token is REGISTRY_AUTH_FAILED", async () => {
        const cases: [(res: ServerResponse) => void, RegExp][] = [
          [
            (res) => json(res, 401, {}),
            /refused to let vm pull from team\/vibe with the credentials from test \(HTTP 401\)/,
          ],
          [(res) => json(res, 500, {}), /token service of .* answered HTTP 500/],
          [(res) => json(res, 200, { token: "" }), /gave no token/],
          [(res) => res.writeHead(200).end("not json"), /gave no token/],
        ];
        for (const [answer, message] of cases) {
          const registry = await bearerRegistry({
            tokenAnswer: (_req, res) => {
              answer(res);
              return true;
            },
          });
          const error = await failure(
            client(registry.host, { credentials: alice }).manifest("1"),
            "REGISTRY_AUTH_FAILED",
          );
          assert.match(error.message, message);
          noPassword(error);
          assert.deepEqual(calls(registry), ["GET /token"]);
        }
      });

      it("an expired token: a 401 on a later request with a Buffer body gets a fresh token and one retry", async () => {
        let expired = "";
        const registry = await bearerRegistry({
          valid: (token) => token !== expired,
          routes: (req, res) => res.writeHead(201, { "Docker-Content-Digest": sha256Digest(req.body) }).end(),
        });
        const c = client(registry.host, { credentials: alice, actions: ["pull", "push"] });
        await c.authenticate();
        expired = "t1";
        const result = await c.putManifest("1", MediaType.ociManifest, manifestBytes);
        assert.equal(result.digest, manifestDigest);
        const puts = registry.seen.filter((req) => req.method === "PUT");
        assert.deepEqual(
          puts.map((req) => req.headers.authorization),
          ["Bearer t1", "Bearer t2"],
        );
        for (const put of puts) assert.ok(put.body.equals(manifestBytes), "the same bytes both times");
        assert.deepEqual(registry.issued, ["t1", "t2"]);
      });

      it("a 401 after the fresh token is REGISTRY_AUTH_FAILED, with no third try", async () => {
        const registry = await bearerRegistry({ valid: () => false });
        const error = await failure(
          client(registry.host, { credentials: alice }).manifest("1"),
          "REGISTRY_AUTH_FAILED",
        );
        noPassword(error);
        assert.deepEqual(calls(registry), [
          "GET /token",
          `GET /v2/${REPO}/manifests/1`,
          "GET /token",
          `GET /v2/${REPO}/manifests/1`,
        ]);
      });

      it("a 401 on a streamed upload is not retried (the stream cannot be read twice); a Buffer upload is", async () => {
        const registry = await bearerRegistry({
          routes: (req, res) => {
            if (req.method === "HEAD") notFound(res);
            else if (req.method === "POST")
              res.writeHead(202, { Location: `/v2/${REPO}/blobs/uploads/u1` }).end();
            else challenge(res, `Bearer realm="http://${req.headers.host}/token",service="test-registry"`);
          },
        });
        const c = client(registry.host, { credentials: alice, actions: ["pull", "push"] });
        const streamed = await failure(
          c.putBlobStream(sha256Digest(layer), layer.length, Readable.from([layer])),
          "REGISTRY_AUTH_FAILED",
        );
        noPassword(streamed);
        assert.deepEqual(calls(registry), [
          "GET /token",
          `POST /v2/${REPO}/blobs/uploads/`,
          `PUT /v2/${REPO}/blobs/uploads/u1`,
        ]);

        registry.seen.length = 0;
        await failure(c.putBlob(sha256Digest(layer), layer), "REGISTRY_AUTH_FAILED");
        assert.deepEqual(calls(registry), [
          `HEAD /v2/${REPO}/blobs/${sha256Digest(layer)}`,
          `POST /v2/${REPO}/blobs/uploads/`,
          `PUT /v2/${REPO}/blobs/uploads/u1`,
          "GET /token",
          `PUT /v2/${REPO}/blobs/uploads/u1`,
        ]);
      });
    });

    it("a challenge in a scheme vm does not speak is REGISTRY_AUTH_FAILED", async () => {
      const registry = await serve((_req, res) => challenge(res, "Negotiate"));
      const error = await failure(
        client(registry.host, { credentials: alice }).manifest("1"),
        "REGISTRY_AUTH_FAILED",
      );
      assert.match(error.message, /authentication vm does not speak/);
    });
  });

  /** An open registry: GET /v2/ is 200, anything else goes to `routes`. */
  const open = (routes: Handler) =>
    serve((req, res) => {
      if (req.path === "/v2/") json(res, 200, {});
      else routes(req, res);
    });

  describe("manifest()", () => {
    it("by tag: asks for every kind vm reads, checks Docker-Content-Digest against the bytes", async () => {
      const registry = await open((req, res) => {
        if (req.path.endsWith("/good"))
          sendManifest(res, manifestBytes, { "Docker-Content-Digest": manifestDigest });
        else if (req.path.endsWith("/none")) sendManifest(res, manifestBytes);
        else sendManifest(res, manifestBytes, { "Docker-Content-Digest": sha256Digest(indexBytes) });
      });
      const c = client(registry.host);
      const good = await c.manifest("good");
      assert.equal(good?.kind, "manifest");
      assert.equal(good.digest, manifestDigest);
      assert.ok(good.bytes.equals(manifestBytes));
      assert.equal(good.manifest.layers[0]?.digest, sha256Digest(layer));
      assert.equal((await c.manifest("none"))?.digest, manifestDigest, "no header: nothing to check by tag");
      const error = await failure(c.manifest("bad"), "REGISTRY_DIGEST_MISMATCH");
      assert.ok(
        error.message.includes(`expected ${sha256Digest(indexBytes)}, got ${manifestDigest}`),
        error.message,
      );
      assert.ok(error.message.includes(`${registry.host}/${REPO}:bad`), error.message);
      for (const req of registry.seen.filter((req) => req.path !== "/v2/"))
        assert.equal(req.headers.accept, MANIFEST_ACCEPT);
    });

    it("by digest: bytes that do not hash to it are REGISTRY_DIGEST_MISMATCH, whatever the header says", async () => {
      const registry = await open((_req, res) =>
        sendManifest(res, manifestBytes, { "Docker-Content-Digest": sha256Digest(indexBytes) }),
      );
      const c = client(registry.host);
      const error = await failure(c.manifest(sha256Digest(indexBytes)), "REGISTRY_DIGEST_MISMATCH");
      assert.ok(error.message.includes(`${REPO}@${sha256Digest(indexBytes)}`), error.message);
      const right = await open((_req, res) =>
        sendManifest(res, manifestBytes, { "Docker-Content-Digest": sha256Digest(indexBytes) }),
      );
      assert.equal(
        (await client(right.host).manifest(manifestDigest))?.digest,
        manifestDigest,
        "the digest asked for wins over the header",
      );
    });

    it("404 is undefined; an index and a manifest are parsed as such (the media type from the document or Content-Type)", async () => {
      const bare = Buffer.from(
        JSON.stringify({ ...JSON.parse(indexBytes.toString()), mediaType: undefined }),
      );
      const registry = await open((req, res) => {
        if (req.path.endsWith("/index"))
          res.writeHead(200, { "Content-Type": MediaType.ociIndex }).end(indexBytes);
        else if (req.path.endsWith("/bare"))
          res.writeHead(200, { "Content-Type": `${MediaType.ociIndex}; charset=utf-8` }).end(bare);
        else if (req.path.endsWith("/manifest"))
          res.writeHead(200, { "Content-Type": "application/json" }).end(manifestBytes);
        else notFound(res);
      });
      const c = client(registry.host);
      assert.equal(await c.manifest("absent"), undefined);
      const index = await c.manifest("index");
      assert.equal(index?.kind, "index");
      assert.equal(index.mediaType, MediaType.ociIndex);
      assert.deepEqual(
        index.index.manifests.map((m) => m.digest),
        [manifestDigest],
      );
      const fromHeader = await c.manifest("bare");
      assert.equal(fromHeader?.kind, "index");
      const manifest = await c.manifest("manifest");
      assert.equal(manifest?.kind, "manifest");
      assert.equal(manifest.mediaType, MediaType.ociManifest);
    });

    it("garbage, or JSON that is not a manifest, is REGISTRY_MANIFEST_INVALID", async () => {
      const registry = await open((req, res) => {
        if (req.path.endsWith("/garbage"))
          res.writeHead(200, { "Content-Type": MediaType.ociManifest }).end("<html>");
        else if (req.path.endsWith("/shape"))
          sendManifest(
            res,
            Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest })),
          );
        else
          res
            .writeHead(200, { "Content-Type": "text/plain" })
            .end(JSON.stringify({ schemaVersion: 2, mediaType: "text/plain" }));
      });
      const c = client(registry.host);
      await failure(c.manifest("garbage"), "REGISTRY_MANIFEST_INVALID");
      await failure(c.manifest("shape"), "REGISTRY_MANIFEST_INVALID");
      const error = await failure(c.manifest("type"), "REGISTRY_MANIFEST_INVALID");
      assert.match(error.message, /media type text\/plain/);
    });

    it("another status is REGISTRY_REQUEST_FAILED with the registry's own words", async () => {
      const registry = await open((_req, res) =>
        json(res, 500, { errors: [{ code: "UNKNOWN", message: "disk on fire" }] }),
      );
      const error = await failure(client(registry.host).manifest("1"), "REGISTRY_REQUEST_FAILED");
      assert.match(error.message, /HTTP 500 \(disk on fire\)/);
    });
  });

  describe("blobs", () => {
    it("blob(): checked against its digest; more than max is refused; 404 is REGISTRY_NOT_FOUND", async () => {
      const registry = await open((req, res) => {
        if (req.path.endsWith(sha256Digest(layer)) || req.path.endsWith(sha256Digest(config))) res.end(layer);
        else json(res, 404, { errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown to registry" }] });
      });
      const c = client(registry.host);
      assert.ok((await c.blob(sha256Digest(layer), 1024)).equals(layer));
      const mismatch = await failure(c.blob(sha256Digest(config), 1024), "REGISTRY_DIGEST_MISMATCH");
      assert.ok(
        mismatch.message.includes(`expected ${sha256Digest(config)}, got ${sha256Digest(layer)}`),
        mismatch.message,
      );
      const big = await failure(c.blob(sha256Digest(layer), layer.length - 1), "REGISTRY_REQUEST_FAILED");
      assert.match(big.message, new RegExp(`answered more than ${layer.length - 1} bytes`));
      const absent = await failure(c.blob(sha256Digest(Buffer.from("x")), 1024), "REGISTRY_NOT_FOUND");
      assert.match(absent.message, /blob unknown to registry/);
    });

    it("blob(): a redirect to storage elsewhere goes there without the registry's token", async () => {
      const storage = await serve((_req, res) => res.end(layer));
      const registry = await bearerRegistry({
        routes: (_req, res) => res.writeHead(307, { Location: `${storage.origin}/bucket/layer?sig=x` }).end(),
      });
      const bytes = await client(registry.host, { credentials: alice }).blob(sha256Digest(layer), 1024);
      assert.ok(bytes.equals(layer));
      assert.equal(registry.seen.at(-1)?.headers.authorization, "Bearer t1");
      assert.deepEqual(
        storage.seen.map((req) => [req.url, req.headers.authorization]),
        [["/bucket/layer?sig=x", undefined]],
      );
    });

    it("blob(): a registry that drops the connection mid-blob is REGISTRY_UNREACHABLE", async () => {
      const registry = await open((_req, res) => {
        res.writeHead(200, { "Content-Length": String(layer.length * 2) });
        res.write(layer, () => res.socket?.destroy());
      });
      const error = await failure(
        client(registry.host).blob(sha256Digest(layer), 1024),
        "REGISTRY_UNREACHABLE",
      );
      assert.ok(error.message.includes(registry.host), error.message);
    });

    it("blobExists(): HEAD 200 is true, 404 false", async () => {
      const registry = await open((req, res) =>
        res.writeHead(req.path.endsWith(sha256Digest(layer)) ? 200 : 404).end(),
      );
      const c = client(registry.host);
      assert.equal(await c.blobExists(sha256Digest(layer)), true);
      assert.equal(await c.blobExists(sha256Digest(config)), false);
      assert.deepEqual(calls(registry), [
        `HEAD /v2/${REPO}/blobs/${sha256Digest(layer)}`,
        `HEAD /v2/${REPO}/blobs/${sha256Digest(config)}`,
      ]);
    });
  });

  describe("putBlob() and putBlobStream()", () => {
    const digest = sha256Digest(layer);

    /** A registry without the blob; `location` is what POST /blobs/uploads/ answers as Location. */
    const uploads = (location: (host: string) => string | undefined, mount = false) =>
      open((req, res) => {
        if (req.method === "HEAD") notFound(res);
        else if (req.method === "POST" && mount && req.query.has("mount"))
          res.writeHead(201, { Location: `/v2/${REPO}/blobs/${digest}` }).end();
        else if (req.method === "POST") {
          const where = location(String(req.headers.host));
          res.writeHead(202, where ? { Location: where } : {}).end();
        } else if (req.method === "PUT") res.writeHead(201, { "Docker-Content-Digest": digest }).end();
        else res.writeHead(405).end();
      });

    it("HEAD 200: present, nothing uploaded", async () => {
      const registry = await open((_req, res) => res.writeHead(200).end());
      assert.equal(await client(registry.host).putBlob(digest, layer, "team/base"), "present");
      assert.deepEqual(calls(registry), [`HEAD /v2/${REPO}/blobs/${digest}`]);
    });

    it("a mount answered 201: mounted, nothing uploaded; no mount is asked from the repository itself", async () => {
      const registry = await uploads(() => `/v2/${REPO}/blobs/uploads/u1`, true);
      const c = client(registry.host);
      assert.equal(await c.putBlob(digest, layer, "team/base"), "mounted");
      const post = registry.seen.find((req) => req.method === "POST");
      assert.deepEqual(Object.fromEntries(post?.query ?? []), { mount: digest, from: "team/base" });
      assert.equal(registry.seen.filter((req) => req.method === "PUT").length, 0);

      registry.seen.length = 0;
      assert.equal(await c.putBlob(digest, layer, REPO), "uploaded");
      assert.equal(registry.seen.find((req) => req.method === "POST")?.url, `/v2/${REPO}/blobs/uploads/`);
    });

    it("otherwise POST, then PUT to a relative Location with ?digest= added to its own query", async () => {
      const registry = await uploads(() => `/v2/${REPO}/blobs/uploads/u1?_state=abc`);
      assert.equal(await client(registry.host).putBlob(digest, layer, "team/base"), "uploaded");
      assert.deepEqual(calls(registry), [
        `HEAD /v2/${REPO}/blobs/${digest}`,
        `POST /v2/${REPO}/blobs/uploads/`,
        `PUT /v2/${REPO}/blobs/uploads/u1`,
      ]);
      const put = registry.seen.at(-1)!;
      assert.deepEqual(Object.fromEntries(put.query), { _state: "abc", digest });
      assert.ok(put.body.equals(layer));
      assert.equal(put.headers["content-length"], String(layer.length));
      assert.equal(put.headers["content-type"], "application/octet-stream");
    });

    it("an absolute Location works too", async () => {
      const registry = await uploads((host) => `http://${host}/uploads/elsewhere/u2`);
      assert.equal(await client(registry.host).putBlob(digest, layer), "uploaded");
      const put = registry.seen.at(-1)!;
      assert.equal(put.path, "/uploads/elsewhere/u2");
      assert.equal(put.query.get("digest"), digest);
    });

    it("the registry's Authorization does not go to a Location on another origin", async () => {
      const storage = await serve((_req, res) => res.writeHead(201).end());
      const registry = await bearerRegistry({
        routes: (req, res) => {
          if (req.method === "HEAD") notFound(res);
          else res.writeHead(202, { Location: `${storage.origin}/upload/u3` }).end();
        },
      });
      assert.equal(
        await client(registry.host, { credentials: alice, actions: ["pull", "push"] }).putBlob(digest, layer),
        "uploaded",
      );
      assert.equal(registry.seen.find((req) => req.method === "POST")?.headers.authorization, "Bearer t1");
      assert.deepEqual(
        storage.seen.map((req) => [req.method, req.path, req.headers.authorization]),
        [["PUT", "/upload/u3", undefined]],
      );
    });

    it("a 401 from a Location on another origin is not answered: no token is asked for its challenge", async () => {
      const storage = await serve((req, res) =>
        challenge(res, `Bearer realm="http://${req.headers.host}/token",service="storage"`),
      );
      const registry = await bearerRegistry({
        routes: (req, res) => {
          if (req.method === "HEAD") notFound(res);
          else res.writeHead(202, { Location: `${storage.origin}/upload/u5` }).end();
        },
      });
      const c = client(registry.host, { credentials: alice, actions: ["pull", "push"] });
      const error = await failure(c.putBlob(digest, layer), "REGISTRY_AUTH_FAILED");
      noPassword(error);
      assert.deepEqual(
        storage.seen.map((req) => `${req.method} ${req.path}`),
        ["PUT /upload/u5"],
      );
      assert.deepEqual(registry.issued, ["t1"]);
    });

    it("a 202 without Location is REGISTRY_REQUEST_FAILED", async () => {
      const registry = await uploads(() => undefined);
      const error = await failure(client(registry.host).putBlob(digest, layer), "REGISTRY_REQUEST_FAILED");
      assert.match(error.message, /without saying where/);
    });

    it("putBlobStream sends Content-Length and the stream's bytes, in one PUT, without a HEAD", async () => {
      const registry = await uploads(() => `/v2/${REPO}/blobs/uploads/u4`);
      const half = layer.length >> 1;
      await client(registry.host).putBlobStream(
        digest,
        layer.length,
        Readable.from([layer.subarray(0, half), layer.subarray(half)]),
      );
      assert.deepEqual(calls(registry), [
        `POST /v2/${REPO}/blobs/uploads/`,
        `PUT /v2/${REPO}/blobs/uploads/u4`,
      ]);
      const put = registry.seen.at(-1)!;
      assert.equal(put.headers["content-length"], String(layer.length));
      assert.equal(put.headers["transfer-encoding"], undefined);
      assert.ok(put.body.equals(layer));
      assert.equal(put.query.get("digest"), digest);
    });
  });

  describe("putManifest()", () => {
    it("PUTs the bytes with their media type; returns the digest and the OCI-Subject header as subject", async () => {
      const subject = sha256Digest(Buffer.from("subject"));
      const registry = await open((req, res) =>
        res.writeHead(201, { "Docker-Content-Digest": sha256Digest(req.body), "OCI-Subject": subject }).end(),
      );
      assert.deepEqual(await client(registry.host).putManifest("1", MediaType.ociManifest, manifestBytes), {
        digest: manifestDigest,
        subject,
      });
      const put = registry.seen.at(-1)!;
      assert.equal(put.path, `/v2/${REPO}/manifests/1`);
      assert.equal(put.headers["content-type"], MediaType.ociManifest);
      assert.ok(put.body.equals(manifestBytes));
    });

    it("no headers: the digest of the bytes and no subject", async () => {
      const registry = await open((_req, res) => res.writeHead(201).end());
      assert.deepEqual(
        await client(registry.host).putManifest(manifestDigest, MediaType.ociManifest, manifestBytes),
        {
          digest: manifestDigest,
          subject: undefined,
        },
      );
    });

    it("a Docker-Content-Digest other than sha256 of the bytes is REGISTRY_DIGEST_MISMATCH", async () => {
      const registry = await open((_req, res) =>
        res.writeHead(201, { "Docker-Content-Digest": sha256Digest(indexBytes) }).end(),
      );
      const error = await failure(
        client(registry.host).putManifest("1", MediaType.ociManifest, manifestBytes),
        "REGISTRY_DIGEST_MISMATCH",
      );
      assert.ok(
        error.message.includes(`expected ${manifestDigest}, got ${sha256Digest(indexBytes)}`),
        error.message,
      );
    });
  });

  describe("referrers()", () => {
    const tag = `sha256-${manifestDigest.slice("sha256:".length)}`;
    const referrer = JSON.parse(indexBytes.toString()) as { manifests: unknown[] };

    it("fallbackTag is the digest with '-' for ':'", () => {
      assert.equal(fallbackTag(manifestDigest), tag);
    });

    it("200 with an OCI index: its manifests, via the API", async () => {
      const registry = await open((_req, res) =>
        res.writeHead(200, { "Content-Type": MediaType.ociIndex }).end(indexBytes),
      );
      const found = await client(registry.host).referrers(manifestDigest);
      assert.deepEqual(found, { descriptors: referrer.manifests, via: "api" });
      assert.deepEqual(calls(registry), [`GET /v2/${REPO}/referrers/${manifestDigest}`]);
      assert.equal(registry.seen.at(-1)?.headers.accept, MediaType.ociIndex);
    });

    it("404: the sha256-<hex> tag's index, via the tag; no such tag is none", async () => {
      const registry = await open((req, res) => {
        if (req.path === `/v2/${REPO}/manifests/${tag}`)
          res.writeHead(200, { "Content-Type": MediaType.ociIndex }).end(indexBytes);
        else notFound(res);
      });
      assert.deepEqual(await client(registry.host).referrers(manifestDigest), {
        descriptors: referrer.manifests,
        via: "tag",
      });
      assert.deepEqual(calls(registry), [
        `GET /v2/${REPO}/referrers/${manifestDigest}`,
        `GET /v2/${REPO}/manifests/${tag}`,
      ]);

      const empty = await open((_req, res) => notFound(res));
      assert.deepEqual(await client(empty.host).referrers(manifestDigest), { descriptors: [], via: "tag" });
    });

    it("a 200 that is not an index falls back to the tag too; a tag holding a manifest is REGISTRY_MANIFEST_INVALID", async () => {
      const registry = await open((req, res) => {
        if (req.path.includes("/referrers/"))
          res.writeHead(200, { "Content-Type": "text/html" }).end("<html>");
        else sendManifest(res, manifestBytes);
      });
      const error = await failure(
        client(registry.host).referrers(manifestDigest),
        "REGISTRY_MANIFEST_INVALID",
      );
      assert.match(error.message, /is not an index of referrers/);
      assert.deepEqual(calls(registry), [
        `GET /v2/${REPO}/referrers/${manifestDigest}`,
        `GET /v2/${REPO}/manifests/${tag}`,
      ]);
    });
  });

  describe("reaching the registry", () => {
    const tls = selfSigned();

    it("a loopback registry speaking plain HTTP: the https attempt fails as not TLS, then http is used", async () => {
      const registry = await open((_req, res) => sendManifest(res, manifestBytes));
      const origins: string[] = [];
      class Recording extends RegistryTransport {
        override send(request: HttpRequest): Promise<HttpResponse> {
          origins.push(request.url.origin);
          return super.send(request);
        }
      }
      const recording = new Recording(tempDir());
      onCleanup(() => recording.close());
      const c = client(registry.host, { transport: recording });
      assert.equal((await c.manifest("1"))?.digest, manifestDigest);
      assert.equal((await c.manifest("2"))?.digest, manifestDigest);
      assert.deepEqual(
        origins,
        [`https://${registry.host}`, registry.origin, registry.origin, registry.origin],
        "https is tried once",
      );
    });

    it("a loopback registry with an untrusted certificate: REGISTRY_TLS_FAILED naming certs.d/<host>/ca.crt, no fallback", async () => {
      const registry = await serve((_req, res) => json(res, 200, {}), tls);
      const error = await failure(client(registry.host).manifest("1"), "REGISTRY_TLS_FAILED");
      assert.ok(error.hint?.includes(join(CERTS_DIR, registry.host, "ca.crt")), error.hint);
      assert.equal(error.hint?.includes("/etc/docker/certs.d/"), true);
      assert.equal(registry.seen.length, 0);
    });

    it("with the CA in <certsDir>/<host:port>/ca.crt it works over https", async () => {
      const registry = await serve((req, res) => {
        if (req.path === "/v2/") json(res, 200, {});
        else sendManifest(res, manifestBytes);
      }, tls);
      const certs = tempDir();
      mkdirSync(join(certs, registry.host));
      writeFileSync(join(certs, registry.host, "ca.crt"), tls.cert);
      const c = client(registry.host, { transport: transport(certs) });
      assert.equal((await c.manifest("1"))?.digest, manifestDigest);
      assert.deepEqual(calls(registry), [`GET /v2/${REPO}/manifests/1`]);
    });

    it("an unreachable registry (a closed port) is REGISTRY_UNREACHABLE naming the host", async () => {
      const server = createServer();
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      await new Promise((resolve) => server.close(resolve));
      const error = await failure(client(host).manifest("1"), "REGISTRY_UNREACHABLE");
      assert.ok(error.message.includes(host), error.message);
      assert.ok(error.hint?.includes(`(${host}) and that it is running`), error.hint);
    });
  });
});
