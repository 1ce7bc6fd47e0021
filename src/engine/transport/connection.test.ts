import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { VmError } from "../../errors.ts";
import { discoverEndpoint, parseHost } from "./connection.ts";

function engineError(fn: () => unknown, code: string): VmError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof VmError, `expected a VmError, got ${String(error)}`);
    assert.equal(error.code, code);
    assert.equal(error.exitCode, 6);
    return error;
  }
  assert.fail("expected a VmError");
}

describe("parseHost", () => {
  it("reads unix:// as a socket path", () => {
    assert.deepEqual(parseHost("unix:///var/run/docker.sock", "DOCKER_HOST"), {
      url: "unix:///var/run/docker.sock",
      source: "DOCKER_HOST",
      socketPath: "/var/run/docker.sock",
    });
  });

  it("refuses unix:// without a path", () => {
    const error = engineError(() => parseHost("unix://", "DOCKER_HOST"), "ENGINE_HOST_INVALID");
    assert.equal(error.message, "DOCKER_HOST 'unix://' cannot be used: no socket path");
  });

  it("reads a plain absolute path as a unix socket", () => {
    assert.deepEqual(parseHost("/run/user/1000/docker.sock", "DOCKER_HOST"), {
      url: "unix:///run/user/1000/docker.sock",
      source: "DOCKER_HOST",
      socketPath: "/run/user/1000/docker.sock",
    });
  });

  it("reads tcp://host:port without TLS", () => {
    assert.deepEqual(parseHost("tcp://10.0.0.5:2375", "DOCKER_HOST"), {
      url: "tcp://10.0.0.5:2375",
      source: "DOCKER_HOST",
      host: "10.0.0.5",
      port: 2375,
    });
  });

  it("defaults the tcp port to 2375 without TLS and 2376 with it", () => {
    assert.equal(parseHost("tcp://engine", "x").port, 2375);
    const tls = { rejectUnauthorized: true };
    assert.deepEqual(parseHost("tcp://engine", "x", tls), {
      url: "tcp://engine",
      source: "x",
      host: "engine",
      port: 2376,
      tls,
    });
  });

  it("reads http:// as plain and https:// as TLS", () => {
    assert.deepEqual(parseHost("http://engine:8080", "x"), {
      url: "http://engine:8080",
      source: "x",
      host: "engine",
      port: 8080,
    });
    assert.deepEqual(parseHost("https://engine:8443", "x"), {
      url: "https://engine:8443",
      source: "x",
      host: "engine",
      port: 8443,
      tls: { rejectUnauthorized: true },
    });
  });

  it("defaults the port of https:// to the TLS port 2376", () => {
    assert.equal(parseHost("https://engine", "x").port, 2376);
  });

  it("gives an IPv6 tcp host without brackets, as node's http.request needs it", () => {
    assert.equal(parseHost("tcp://[::1]:2375", "x").host, "::1");
  });

  it("refuses ssh:// as not supported yet", () => {
    const error = engineError(() => parseHost("ssh://me@box", "DOCKER_HOST"), "ENGINE_HOST_INVALID");
    assert.equal(
      error.message,
      "DOCKER_HOST 'ssh://me@box' cannot be used: vm does not speak ssh:// to engines yet",
    );
    assert.match(error.hint ?? "", /ssh -nNT -L \/tmp\/remote-docker\.sock:\/var\/run\/docker\.sock HOST/);
  });

  it("refuses an unknown scheme or garbage", () => {
    assert.equal(
      engineError(() => parseHost("npipe:////./pipe/docker_engine", "DOCKER_HOST"), "ENGINE_HOST_INVALID")
        .message,
      "DOCKER_HOST 'npipe:////./pipe/docker_engine' cannot be used: unknown scheme",
    );
    assert.match(
      engineError(() => parseHost("not a host", "DOCKER_HOST"), "ENGINE_HOST_INVALID").message,
      /cannot be used: unknown scheme$/,
    );
  });

  it("refuses a tcp:// address that is not a valid URL", () => {
    assert.equal(
      engineError(() => parseHost("tcp://bad host:2375", "DOCKER_HOST"), "ENGINE_HOST_INVALID").message,
      "DOCKER_HOST 'tcp://bad host:2375' cannot be used: not a valid address",
    );
  });
});

describe("discoverEndpoint", () => {
  let root: string;
  let home: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), "vm-conn-"));
    home = join(root, "home");
    mkdirSync(home);
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  /** A fake $DOCKER_CONFIG with the given contexts (name → meta.json content) and currentContext. */
  function dockerConfig(contexts: Record<string, unknown>, currentContext?: string): string {
    const dir = mkdtempSync(join(root, "docker-"));
    for (const [name, meta] of Object.entries(contexts)) {
      const metaDir = join(dir, "contexts", "meta", createHash("sha256").update(name).digest("hex"));
      mkdirSync(metaDir, { recursive: true });
      writeFileSync(join(metaDir, "meta.json"), typeof meta === "string" ? meta : JSON.stringify(meta));
    }
    if (currentContext !== undefined)
      writeFileSync(join(dir, "config.json"), JSON.stringify({ currentContext }));
    return dir;
  }

  const meta = (host: unknown, extra: Record<string, unknown> = {}) => ({
    Name: "x",
    Endpoints: { docker: { Host: host, ...extra } },
  });

  it("uses DOCKER_HOST first, over any context", () => {
    const config = dockerConfig({ remote: meta("unix:///ctx.sock") }, "remote");
    assert.deepEqual(
      discoverEndpoint({
        env: { DOCKER_HOST: "unix:///tmp/engine.sock", DOCKER_CONTEXT: "remote", DOCKER_CONFIG: config },
        home,
      }),
      { url: "unix:///tmp/engine.sock", source: "DOCKER_HOST", socketPath: "/tmp/engine.sock" },
    );
  });

  it("reads a tcp DOCKER_HOST", () => {
    assert.deepEqual(discoverEndpoint({ env: { DOCKER_HOST: "tcp://127.0.0.1:2375" }, home }), {
      url: "tcp://127.0.0.1:2375",
      source: "DOCKER_HOST",
      host: "127.0.0.1",
      port: 2375,
    });
  });

  it("reads a plain path DOCKER_HOST as a socket", () => {
    assert.deepEqual(discoverEndpoint({ env: { DOCKER_HOST: "/tmp/d.sock" }, home }), {
      url: "unix:///tmp/d.sock",
      source: "DOCKER_HOST",
      socketPath: "/tmp/d.sock",
    });
  });

  it("reports an ssh DOCKER_HOST as ENGINE_HOST_INVALID", () => {
    engineError(
      () => discoverEndpoint({ env: { DOCKER_HOST: "ssh://me@box" }, home }),
      "ENGINE_HOST_INVALID",
    );
  });

  it("reports a garbage DOCKER_HOST as ENGINE_HOST_INVALID", () => {
    engineError(() => discoverEndpoint({ env: { DOCKER_HOST: "garbage" }, home }), "ENGINE_HOST_INVALID");
  });

  it("reads TLS material from DOCKER_CERT_PATH and verifies when DOCKER_TLS_VERIFY is set", () => {
    const certs = join(root, "certs");
    mkdirSync(certs);
    writeFileSync(join(certs, "ca.pem"), "CA");
    writeFileSync(join(certs, "cert.pem"), "CERT");
    writeFileSync(join(certs, "key.pem"), "KEY");
    const endpoint = discoverEndpoint({
      env: { DOCKER_HOST: "tcp://engine", DOCKER_TLS_VERIFY: "1", DOCKER_CERT_PATH: certs },
      home,
    });
    assert.equal(endpoint.port, 2376);
    assert.equal(endpoint.tls?.rejectUnauthorized, true);
    assert.equal(endpoint.tls?.ca?.toString(), "CA");
    assert.equal(endpoint.tls?.cert?.toString(), "CERT");
    assert.equal(endpoint.tls?.key?.toString(), "KEY");

    const unverified = discoverEndpoint({
      env: { DOCKER_HOST: "tcp://engine:9999", DOCKER_TLS_VERIFY: "0", DOCKER_CERT_PATH: certs },
      home,
    });
    assert.equal(unverified.port, 9999);
    assert.equal(unverified.tls?.rejectUnauthorized, false);
  });

  it("uses no TLS when DOCKER_TLS_VERIFY is empty and DOCKER_CERT_PATH unset", () => {
    const endpoint = discoverEndpoint({ env: { DOCKER_HOST: "tcp://engine", DOCKER_TLS_VERIFY: "" }, home });
    assert.equal(endpoint.tls, undefined);
    assert.equal(endpoint.port, 2375);
  });

  it("looks for TLS certificates in the docker config folder of the given home when DOCKER_CERT_PATH is unset", () => {
    const fakeHome = join(root, "tls-home");
    mkdirSync(join(fakeHome, ".docker"), { recursive: true });
    writeFileSync(join(fakeHome, ".docker", "ca.pem"), "HOME-CA");
    const fromHome = discoverEndpoint({
      env: { DOCKER_HOST: "tcp://e", DOCKER_TLS_VERIFY: "1" },
      home: fakeHome,
    });
    assert.equal(fromHome.tls?.ca?.toString(), "HOME-CA");

    const config = dockerConfig({});
    writeFileSync(join(config, "ca.pem"), "CONFIG-CA");
    const fromConfig = discoverEndpoint({
      env: { DOCKER_HOST: "tcp://e", DOCKER_TLS_VERIFY: "1", DOCKER_CONFIG: config },
      home,
    });
    assert.equal(fromConfig.tls?.ca?.toString(), "CONFIG-CA");
  });

  it("uses the context named by DOCKER_CONTEXT", () => {
    const config = dockerConfig({ colima: meta("unix:///x.sock") });
    assert.deepEqual(discoverEndpoint({ env: { DOCKER_CONTEXT: "colima", DOCKER_CONFIG: config }, home }), {
      url: "unix:///x.sock",
      source: "docker context 'colima'",
      socketPath: "/x.sock",
    });
  });

  it("uses config.json's currentContext when DOCKER_CONTEXT is unset", () => {
    const config = dockerConfig({ remote: meta("tcp://10.1.2.3:2375") }, "remote");
    assert.deepEqual(discoverEndpoint({ env: { DOCKER_CONFIG: config }, home }), {
      url: "tcp://10.1.2.3:2375",
      source: "docker context 'remote'",
      host: "10.1.2.3",
      port: 2375,
    });
  });

  it("prefers DOCKER_CONTEXT over config.json's currentContext", () => {
    const config = dockerConfig({ a: meta("unix:///a.sock"), b: meta("unix:///b.sock") }, "a");
    assert.equal(
      discoverEndpoint({ env: { DOCKER_CONTEXT: "b", DOCKER_CONFIG: config }, home }).socketPath,
      "/b.sock",
    );
  });

  it("finds the docker config in <home>/.docker when DOCKER_CONFIG is unset", () => {
    const ctxHome = join(root, "ctx-home");
    const id = createHash("sha256").update("mine").digest("hex");
    mkdirSync(join(ctxHome, ".docker", "contexts", "meta", id), { recursive: true });
    writeFileSync(join(ctxHome, ".docker", "config.json"), JSON.stringify({ currentContext: "mine" }));
    writeFileSync(
      join(ctxHome, ".docker", "contexts", "meta", id, "meta.json"),
      JSON.stringify(meta("unix:///home.sock")),
    );
    assert.equal(discoverEndpoint({ env: {}, home: ctxHome }).socketPath, "/home.sock");
  });

  it("reads a context's TLS folder and its SkipTLSVerify", () => {
    const config = dockerConfig({ secure: meta("tcp://engine", { SkipTLSVerify: true }) });
    const id = createHash("sha256").update("secure").digest("hex");
    const tlsDir = join(config, "contexts", "tls", id, "docker");
    mkdirSync(tlsDir, { recursive: true });
    writeFileSync(join(tlsDir, "ca.pem"), "CTX-CA");
    const endpoint = discoverEndpoint({ env: { DOCKER_CONTEXT: "secure", DOCKER_CONFIG: config }, home });
    assert.equal(endpoint.port, 2376);
    assert.equal(endpoint.tls?.rejectUnauthorized, false);
    assert.equal(endpoint.tls?.ca?.toString(), "CTX-CA");
    assert.equal(endpoint.tls?.cert, undefined);
  });

  it("falls through to the default socket for the 'default' context", () => {
    const config = dockerConfig({}, "default");
    const expected = {
      url: "unix:///var/run/docker.sock",
      source: "default socket",
      socketPath: "/var/run/docker.sock",
    };
    assert.deepEqual(discoverEndpoint({ env: { DOCKER_CONFIG: config }, home }), expected);
    const other = dockerConfig({ remote: meta("unix:///r.sock") }, "remote");
    assert.deepEqual(
      discoverEndpoint({ env: { DOCKER_CONTEXT: "default", DOCKER_CONFIG: other }, home }),
      expected,
    );
  });

  it("uses the default socket with no DOCKER_HOST, no context and no config.json", () => {
    assert.deepEqual(discoverEndpoint({ env: {}, home }), {
      url: "unix:///var/run/docker.sock",
      source: "default socket",
      socketPath: "/var/run/docker.sock",
    });
  });

  it("ignores a config.json that is not valid JSON", () => {
    const config = dockerConfig({});
    writeFileSync(join(config, "config.json"), "{not json");
    assert.equal(discoverEndpoint({ env: { DOCKER_CONFIG: config }, home }).source, "default socket");
  });

  it("reports an active context without meta as ENGINE_CONTEXT_MISSING", () => {
    const config = dockerConfig({}, "gone");
    const error = engineError(
      () => discoverEndpoint({ env: { DOCKER_CONFIG: config }, home }),
      "ENGINE_CONTEXT_MISSING",
    );
    const id = createHash("sha256").update("gone").digest("hex");
    assert.equal(
      error.message,
      `Docker context 'gone' is active but ${join(config, "contexts", "meta", id, "meta.json")} cannot be read`,
    );
    assert.match(error.hint ?? "", /docker context use default/);
  });

  it("reports a context meta that is not JSON as ENGINE_CONTEXT_MISSING", () => {
    const config = dockerConfig({ broken: "{nope" });
    engineError(
      () => discoverEndpoint({ env: { DOCKER_CONTEXT: "broken", DOCKER_CONFIG: config }, home }),
      "ENGINE_CONTEXT_MISSING",
    );
  });

  it("reports a context without a docker endpoint as ENGINE_CONTEXT_MISSING", () => {
    const config = dockerConfig({ empty: { Name: "empty", Endpoints: {} } });
    const error = engineError(
      () => discoverEndpoint({ env: { DOCKER_CONTEXT: "empty", DOCKER_CONFIG: config }, home }),
      "ENGINE_CONTEXT_MISSING",
    );
    assert.equal(error.message, "Docker context 'empty' has no docker endpoint");
  });

  it("reports a context whose host is unusable as ENGINE_HOST_INVALID naming the context", () => {
    const config = dockerConfig({ tunnel: meta("ssh://me@box") });
    const error = engineError(
      () => discoverEndpoint({ env: { DOCKER_CONTEXT: "tunnel", DOCKER_CONFIG: config }, home }),
      "ENGINE_HOST_INVALID",
    );
    assert.match(error.message, /^docker context 'tunnel' 'ssh:\/\/me@box' cannot be used/);
  });
});
