import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { createServer, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { Readable } from "node:stream";
import { describe, it } from "node:test";
import { isVmError } from "../errors.ts";
import {
  CERTS_DIR,
  RegistryHttpError,
  RegistryTransport,
  connectionError,
  notTls,
  readBody,
  registryErrors,
  type HttpResponse,
} from "./http.ts";
import { selfSigned, serve, tempDir, transport } from "./testing/server.ts";

/** A port nothing listens on: one a server had, closed again. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function text(res: HttpResponse): Promise<string> {
  return (await readBody(res, 1024 * 1024)).toString("utf8");
}

/** What a promise rejected with; fails the test when it resolves. */
async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => assert.fail("resolved"),
    (error: unknown) => error,
  );
}

const redirect = (res: ServerResponse, location: string, status = 307) =>
  res.writeHead(status, { Location: location }).end();

describe("registry HTTP transport (registry/http.ts)", () => {
  it("a redirect to another origin goes without Authorization (either spelling), and the answer's url is where it landed", async () => {
    const storage = await serve((_req, res) => res.end("blob bytes"));
    const registry = await serve((_req, res) => redirect(res, `${storage.origin}/blob?sig=1`));
    for (const name of ["Authorization", "authorization"]) {
      const res = await transport().send({
        method: "GET",
        url: new URL(`${registry.origin}/v2/team/vibe/blobs/sha256:x`),
        headers: { [name]: "Bearer secret", Accept: "*/*" },
      });
      assert.equal(res.status, 200);
      assert.equal(await text(res), "blob bytes");
      assert.equal(res.url.href, `${storage.origin}/blob?sig=1`);
    }
    assert.equal(registry.seen.length, 2);
    for (const req of registry.seen) assert.equal(req.headers.authorization, "Bearer secret");
    assert.equal(storage.seen.length, 2);
    for (const req of storage.seen) {
      assert.equal(req.headers.authorization, undefined, "no Authorization to the other origin");
      assert.equal(req.headers.accept, "*/*", "other headers still go");
      assert.equal(req.url, "/blob?sig=1");
    }
  });

  it("the same host on another port, or by another name, is another origin", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/start") redirect(res, `http://localhost:${registry.host.split(":")[1]}/end`);
      else res.end("ok");
    });
    const res = await transport().send({
      method: "GET",
      url: new URL(`${registry.origin}/start`),
      headers: { Authorization: "Basic c2VjcmV0" },
    });
    res.body.resume();
    assert.deepEqual(
      registry.seen.map((req) => [req.url, req.headers.authorization]),
      [
        ["/start", "Basic c2VjcmV0"],
        ["/end", undefined],
      ],
    );
  });

  it("a same-origin redirect keeps Authorization, relative Locations resolve against the URL that answered", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/v2/a") redirect(res, "/v2/b", 302);
      else if (req.url === "/v2/b") redirect(res, "c", 301);
      else res.end(req.url);
    });
    const res = await transport().send({
      method: "GET",
      url: new URL(`${registry.origin}/v2/a`),
      headers: { Authorization: "Bearer t" },
    });
    assert.equal(await text(res), "/v2/c");
    assert.deepEqual(
      registry.seen.map((req) => [req.url, req.headers.authorization]),
      [
        ["/v2/a", "Bearer t"],
        ["/v2/b", "Bearer t"],
        ["/v2/c", "Bearer t"],
      ],
    );
  });

  it("follows 5 redirects; a 6th is a VmError naming the origin first asked", async () => {
    const registry = await serve((req, res) => {
      const n = Number(req.url.slice(1));
      if (n > 0) redirect(res, `/${n - 1}`);
      else res.end("landed");
    });
    const five = await transport().send({ method: "GET", url: new URL(`${registry.origin}/5`) });
    assert.equal(await text(five), "landed");

    registry.seen.length = 0;
    const error = await rejection(transport().send({ method: "GET", url: new URL(`${registry.origin}/6`) }));
    assert.ok(isVmError(error, "REGISTRY_REQUEST_FAILED"), String(error));
    assert.match(error.message, /Too many redirects/);
    assert.ok(error.message.includes(registry.origin), error.message);
    assert.equal(registry.seen.length, 6, "the 6th redirect is not followed");
  });

  it("a 304 or a 3xx without Location is an answer, not a redirect", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/304") res.writeHead(304, { Location: "/elsewhere" }).end();
      else res.writeHead(300).end();
    });
    const a = await transport().send({ method: "GET", url: new URL(`${registry.origin}/304`) });
    const b = await transport().send({ method: "GET", url: new URL(`${registry.origin}/300`) });
    a.body.resume();
    b.body.resume();
    assert.deepEqual([a.status, b.status], [304, 300]);
    assert.equal(registry.seen.length, 2);
  });

  it("a Buffer body is resent on a redirect; a redirected stream upload is refused, not sent empty", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/upload") redirect(res, "/moved");
      else res.writeHead(201).end();
    });
    const res = await transport().send({
      method: "PUT",
      url: new URL(`${registry.origin}/upload`),
      body: Buffer.from("abc"),
    });
    res.body.resume();
    assert.equal(res.status, 201);
    assert.deepEqual(
      registry.seen.map((req) => [req.url, req.body.toString()]),
      [
        ["/upload", "abc"],
        ["/moved", "abc"],
      ],
    );

    registry.seen.length = 0;
    const error = await rejection(
      transport().send({
        method: "PUT",
        url: new URL(`${registry.origin}/upload`),
        body: Readable.from([Buffer.from("xyz")]),
        length: 3,
      }),
    );
    assert.ok(isVmError(error, "REGISTRY_REQUEST_FAILED"), String(error));
    assert.match(error.message, /redirected an upload/);
    assert.deepEqual(
      registry.seen.map((req) => req.url),
      ["/upload"],
    );
  });

  it("Content-Length: a Buffer's length, a stream's given length, 0 for a bodiless POST; User-Agent vm", async () => {
    const registry = await serve((_req, res) => res.writeHead(202).end());
    const send = async (request: Parameters<RegistryTransport["send"]>[0]) =>
      (await transport().send(request)).body.resume();
    await send({ method: "PUT", url: new URL(`${registry.origin}/buffer`), body: Buffer.from("12345") });
    await send({
      method: "PUT",
      url: new URL(`${registry.origin}/stream`),
      body: Readable.from([Buffer.from("ab"), Buffer.from("cd")]),
      length: 4,
    });
    await send({ method: "POST", url: new URL(`${registry.origin}/post`) });
    await send({ method: "GET", url: new URL(`${registry.origin}/get`) });
    assert.deepEqual(
      registry.seen.map((req) => [req.url, req.headers["content-length"], req.body.toString()]),
      [
        ["/buffer", "5", "12345"],
        ["/stream", "4", "abcd"],
        ["/post", "0", ""],
        ["/get", undefined, ""],
      ],
    );
    for (const req of registry.seen) assert.equal(req.headers["user-agent"], "vm");
    assert.equal(registry.seen[1]!.headers["transfer-encoding"], undefined, "not chunked");
  });

  it("readBody refuses more than its limit; registryErrors reads the spec's errors array, or gives []", async () => {
    const registry = await serve((req, res) => {
      if (req.url === "/big") res.end("x".repeat(2000));
      else if (req.url === "/errors")
        res
          .writeHead(400, { "Content-Type": "application/json" })
          .end(JSON.stringify({ errors: [{ code: "DIGEST_INVALID", message: "bad digest" }, { code: 7 }] }));
      else res.writeHead(500).end("<html>oops</html>");
    });
    const big = await transport().send({ method: "GET", url: new URL(`${registry.origin}/big`) });
    const error = await rejection(readBody(big, 1000));
    assert.ok(isVmError(error, "REGISTRY_REQUEST_FAILED"), String(error));
    assert.ok(error.message.includes(`${registry.origin}/big answered more than 1000 bytes`), error.message);

    const withErrors = await transport().send({ method: "GET", url: new URL(`${registry.origin}/errors`) });
    const errors = await registryErrors(withErrors);
    assert.deepEqual(errors, [
      { code: "DIGEST_INVALID", message: "bad digest" },
      { code: "", message: "" },
    ]);
    const html = await transport().send({ method: "GET", url: new URL(`${registry.origin}/html`) });
    assert.deepEqual(await registryErrors(html), []);

    const httpError = new RegistryHttpError(400, new URL(`${registry.origin}/v2/x?q=1`), {}, errors);
    assert.equal(
      httpError.message,
      `HTTP 400 from ${registry.origin}/v2/x (DIGEST_INVALID: bad digest; : )`,
      "no query string in the message",
    );
  });

  it("a connection lost mid-body is a VmError naming the host, not Node's bare 'aborted'", async () => {
    const registry = await serve((_req, res) => {
      res.writeHead(200, { "Content-Length": "100" });
      res.write("0123456789", () => res.socket?.destroy());
    });
    const res = await transport().send({
      method: "GET",
      url: new URL(`${registry.origin}/v2/team/vibe/blobs/x`),
    });
    const error = await rejection(readBody(res, 1000));
    assert.ok(isVmError(error, "REGISTRY_UNREACHABLE"), String(error));
    assert.ok(error.message.includes(registry.host), error.message);
  });

  it("a closed port is REGISTRY_UNREACHABLE naming the host and the system's code, with what to check", async () => {
    const port = await closedPort();
    const error = await rejection(
      transport().send({ method: "GET", url: new URL(`http://127.0.0.1:${port}/v2/`) }),
    );
    assert.ok(isVmError(error, "REGISTRY_UNREACHABLE"), String(error));
    assert.ok(error.message.includes(`127.0.0.1:${port}`), error.message);
    assert.match(error.message, /ECONNREFUSED/);
    assert.equal(error.hint?.includes(`(127.0.0.1:${port}) and that it is running`), true, error.hint);
    assert.equal(notTls(error), false);
  });

  describe("TLS", () => {
    const tls = selfSigned();

    it("an untrusted certificate is REGISTRY_TLS_FAILED whose hint names certs.d/<host:port>/ca.crt", async () => {
      const registry = await serve((_req, res) => res.end("{}"), tls);
      const error = await rejection(
        transport().send({ method: "GET", url: new URL(`${registry.origin}/v2/`) }),
      );
      assert.ok(isVmError(error, "REGISTRY_TLS_FAILED"), String(error));
      assert.ok(error.message.includes(registry.host), error.message);
      assert.ok(error.hint?.includes(join(CERTS_DIR, registry.host, "ca.crt")), error.hint);
      assert.equal(notTls(error), false, "a TLS server is not mistaken for plain HTTP");
      assert.equal(registry.seen.length, 0);
    });

    it("a CA in <certsDir>/<host:port>/*.crt is trusted for that host only; other files there are not read", async () => {
      const registry = await serve((_req, res) => res.end("secure"), tls);
      const certs = tempDir();
      mkdirSync(join(certs, registry.host));
      writeFileSync(join(certs, registry.host, "ca.crt"), tls.cert);
      writeFileSync(join(certs, registry.host, "client.key"), "not a certificate");
      const res = await transport(certs).send({ method: "GET", url: new URL(`${registry.origin}/v2/`) });
      assert.equal(await text(res), "secure");

      const elsewhere = tempDir();
      mkdirSync(join(elsewhere, "127.0.0.1:1"));
      writeFileSync(join(elsewhere, "127.0.0.1:1", "ca.crt"), tls.cert);
      const error = await rejection(
        transport(elsewhere).send({ method: "GET", url: new URL(`${registry.origin}/v2/`) }),
      );
      assert.ok(isVmError(error, "REGISTRY_TLS_FAILED"), String(error));
    });

    it("HTTPS to a plain-HTTP server fails in a way notTls recognizes", async () => {
      const plain = await serve((_req, res) => res.end("plain"));
      const error = await rejection(
        transport().send({ method: "GET", url: new URL(`https://${plain.host}/v2/`) }),
      );
      assert.ok(isVmError(error), String(error));
      assert.equal(notTls(error), true, String((error as Error).cause));
      assert.equal(notTls(new Error("wrong version number")), true, "a bare error too");
      assert.equal(notTls(undefined), false);
    });
  });

  it("connectionError tells certificate problems from others by code or message", () => {
    const url = new URL("https://registry.example.com:5000/v2/");
    const coded = (code: string, message: string) => Object.assign(new Error(message), { code });
    assert.equal(connectionError(url, coded("CERT_HAS_EXPIRED", "expired")).code, "REGISTRY_TLS_FAILED");
    assert.equal(
      connectionError(url, coded("ERR_TLS_CERT_ALTNAME_INVALID", "altname")).code,
      "REGISTRY_TLS_FAILED",
    );
    assert.equal(
      connectionError(url, new Error("unable to get local issuer certificate")).code,
      "REGISTRY_TLS_FAILED",
    );
    const unreachable = connectionError(url, coded("ENOTFOUND", "getaddrinfo ENOTFOUND"));
    assert.equal(unreachable.code, "REGISTRY_UNREACHABLE");
    assert.equal(unreachable.message, "Cannot reach the registry registry.example.com:5000 (ENOTFOUND)");
    assert.ok(unreachable.cause instanceof Error);
  });
});
