import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isVmError } from "../errors.ts";
import {
  apiOrigin,
  credentialKeys,
  formatRef,
  isLoopback,
  looksLikeRegistryRef,
  parseRegistryRef,
} from "./reference.ts";

const DIGEST = `sha256:${"a1".repeat(32)}`;

/** The VmError parseRegistryRef throws for a text, checked to be REGISTRY_REF_INVALID with a hint. */
function refusal(text: string): string {
  try {
    parseRegistryRef(text);
  } catch (error) {
    assert.ok(isVmError(error, "REGISTRY_REF_INVALID"), `${text}: ${String(error)}`);
    assert.equal(error.exitCode, 2);
    assert.match(error.hint ?? "", /registry\.example\.com\/team\/vibe:2024-10/);
    assert.ok(error.message.startsWith(`'${text}' is not a valid image reference: `), error.message);
    return error.message.slice(error.message.indexOf(": ") + 2);
  }
  assert.fail(`${text} was accepted`);
}

describe("image references (registry/reference.ts)", () => {
  it("a name without a registry host is on Docker Hub, a one-component one under library/", () => {
    assert.deepEqual(parseRegistryRef("ubuntu"), {
      registry: "docker.io",
      repository: "library/ubuntu",
      tag: "latest",
    });
    assert.deepEqual(parseRegistryRef("acme/vibe:1.2"), {
      registry: "docker.io",
      repository: "acme/vibe",
      tag: "1.2",
    });
    assert.deepEqual(parseRegistryRef("docker.io/ubuntu:24.04").repository, "library/ubuntu");
    assert.deepEqual(
      parseRegistryRef("index.docker.io/acme/vibe").registry,
      "docker.io",
      "Docker Hub's old name",
    );
    assert.deepEqual(parseRegistryRef("a/b/c").repository, "a/b/c", "Hub namespaces may nest");
  });

  it("a first component with '.' or ':' or that is localhost names the registry, kept as written but lower-cased", () => {
    assert.deepEqual(parseRegistryRef("ghcr.io/acme/vibe:2024-10"), {
      registry: "ghcr.io",
      repository: "acme/vibe",
      tag: "2024-10",
    });
    assert.deepEqual(parseRegistryRef("127.0.0.1:5000/team/vibe:1"), {
      registry: "127.0.0.1:5000",
      repository: "team/vibe",
      tag: "1",
    });
    assert.equal(parseRegistryRef("localhost/vibe").registry, "localhost");
    assert.equal(parseRegistryRef("localhost/vibe").repository, "vibe", "no library/ outside Docker Hub");
    assert.equal(parseRegistryRef("myhost:5000/vibe").registry, "myhost:5000");
    assert.equal(parseRegistryRef("[::1]:5000/vibe:x").registry, "[::1]:5000");
    assert.equal(parseRegistryRef("Registry.Example.COM:443/team/vibe").registry, "registry.example.com:443");
    assert.equal(parseRegistryRef("DOCKER.IO/ubuntu").registry, "docker.io");
  });

  it("without a '/', a ':' is a tag, as docker reads it: localhost:5000 is library/localhost tagged 5000", () => {
    assert.deepEqual(parseRegistryRef("localhost:5000"), {
      registry: "docker.io",
      repository: "library/localhost",
      tag: "5000",
    });
  });

  it("the tag defaults to latest only without a digest; name:tag@digest keeps both", () => {
    assert.deepEqual(parseRegistryRef(`ghcr.io/acme/vibe@${DIGEST}`), {
      registry: "ghcr.io",
      repository: "acme/vibe",
      digest: DIGEST,
    });
    assert.deepEqual(parseRegistryRef(`ghcr.io/acme/vibe:1@${DIGEST}`), {
      registry: "ghcr.io",
      repository: "acme/vibe",
      tag: "1",
      digest: DIGEST,
    });
  });

  it("repository components are lowercase alphanumerics joined by '.', '_', '__' or dashes", () => {
    for (const name of ["a.b/c_d", "a__b", "a---b", "a-b.c_d__e", "0/1"])
      assert.doesNotThrow(() => parseRegistryRef(`ghcr.io/${name}`), name);
    assert.match(refusal("ghcr.io/acme/Vibe"), /the repository 'acme\/Vibe' must be lowercase/);
    assert.match(refusal("Acme/vibe"), /must be lowercase/, "an uppercase first component is no host to vm");
    assert.match(refusal("ghcr.io/a___b"), /'a___b' in the repository is not lowercase letters and digits/);
    assert.match(refusal("ghcr.io/-a"), /'-a'/);
    assert.match(refusal("ghcr.io/a./b"), /'a\.'/);
    assert.match(refusal("ghcr.io/a//b"), /empty path component/);
    assert.match(refusal("ghcr.io/"), /empty path component/);
    assert.match(refusal("ghcr.io/a b"), /'a b'/);
  });

  it("the registry must be a host[:port]", () => {
    assert.match(refusal("-bad.io/x"), /'-bad\.io' is not a registry host\[:port\]/);
    assert.match(refusal("ghcr.io:port/x"), /'ghcr\.io:port' is not a registry host/);
    assert.match(refusal("a..b/x"), /'a\.\.b'/);
  });

  it("a tag is a word character then up to 127 of word characters, '.' and '-'", () => {
    assert.equal(parseRegistryRef(`x/y:${"t".repeat(128)}`).tag, "t".repeat(128));
    assert.equal(parseRegistryRef("x/y:_a.B-1").tag, "_a.B-1");
    assert.match(refusal(`x/y:${"t".repeat(129)}`), /the tag 't+' is not 1 to 128/);
    assert.match(refusal("x/y:.a"), /the tag '\.a'/);
    assert.match(refusal("x/y:"), /the tag ''/);
    assert.match(refusal("x/y:a+b"), /the tag 'a\+b'/);
  });

  it("a digest is sha256 with 64 lowercase hex digits; other algorithms are named as unsupported", () => {
    assert.match(refusal("x/y@sha256:abc"), /the digest 'sha256:abc' is not sha256: followed by 64/);
    assert.match(refusal(`x/y@sha256:${"A1".repeat(32)}`), /is not sha256: followed by 64 lowercase/);
    assert.match(
      refusal(`x/y@${DIGEST.toUpperCase()}`),
      /not 'SHA256'/,
      "algorithm names are case-sensitive",
    );
    assert.match(refusal(`x/y@sha512:${"a".repeat(128)}`), /only sha256 digests are supported, not 'sha512'/);
    assert.match(refusal(`x/y@${DIGEST}@${DIGEST}`), /the digest/);
  });

  it("refuses an empty text, a bare digest, and an image ID", () => {
    assert.match(refusal(""), /it is empty/);
    assert.match(refusal(`@${DIGEST}`), /names no repository/);
    assert.match(refusal("f".repeat(64)), /image ID/);
  });

  it("the repository is at most 255 characters; the registry is not counted (distribution/reference v0.6)", () => {
    const long = `a/${"b".repeat(253)}`;
    assert.equal(parseRegistryRef(`registry.example.com:5000/${long}`).repository, long);
    assert.match(refusal(`ghcr.io/${long}b`), /longer than 255/);
    assert.match(
      refusal("b".repeat(248)),
      /longer than 255/,
      "library/ counts: docker checks the normalized name",
    );
  });

  it("formats the canonical text, Docker Hub as docker.io/..., and parses it back to the same reference", () => {
    const cases: [string, string][] = [
      ["ubuntu", "docker.io/library/ubuntu:latest"],
      ["acme/vibe:1", "docker.io/acme/vibe:1"],
      ["GHCR.io/acme/vibe:2024-10", "ghcr.io/acme/vibe:2024-10"],
      [`localhost:5000/vibe@${DIGEST}`, `localhost:5000/vibe@${DIGEST}`],
      [`[::1]:5000/vibe:1@${DIGEST}`, `[::1]:5000/vibe:1@${DIGEST}`],
    ];
    for (const [text, canonical] of cases) {
      assert.equal(formatRef(parseRegistryRef(text)), canonical);
      assert.deepEqual(parseRegistryRef(canonical), parseRegistryRef(text), canonical);
    }
  });

  it("Docker Hub's API is registry-1.docker.io; other registries answer on their own host", () => {
    assert.equal(apiOrigin("docker.io"), "https://registry-1.docker.io");
    assert.equal(apiOrigin("ghcr.io"), "https://ghcr.io");
    assert.equal(apiOrigin("127.0.0.1:5000", "http"), "http://127.0.0.1:5000");
    assert.equal(apiOrigin("[::1]:5000", "http"), "http://[::1]:5000");
  });

  it("loopback is localhost, 127.0.0.0/8 and ::1, with or without a port", () => {
    for (const registry of [
      "localhost",
      "localhost:5000",
      "127.0.0.1",
      "127.0.0.1:5000",
      "127.255.3.4:80",
      "[::1]",
      "[::1]:5000",
      "[0:0:0:0:0:0:0:1]:5000",
      "[::ffff:127.0.0.1]:5000",
    ])
      assert.ok(isLoopback(registry), registry);
    for (const registry of [
      "docker.io",
      "ghcr.io",
      "128.0.0.1:5000",
      "10.0.0.1",
      "[::2]:5000",
      "localhost.example.com",
      "127.0.0.1.example.com",
      "my-localhost:5000",
      "",
      "[bad",
    ])
      assert.ok(!isLoopback(registry), registry);
  });

  it("after vm.box's '@', a registry host and a '/' make a registry reference; anything else is a snapshot name", () => {
    for (const text of [
      "ghcr.io/acme/vibe:2024-10",
      "127.0.0.1:5000/team/vibe:1",
      "localhost/vibe",
      "docker.io/acme/vibe",
      "[::1]:5000/x",
    ])
      assert.ok(looksLikeRegistryRef(text), text);
    for (const text of ["vibe-base", "node.22", "acme/vibe", "localhost", "ghcr.io", "/ghcr.io/x", ""])
      assert.ok(!looksLikeRegistryRef(text), text);
  });

  it("credential keys: docker's own first, Docker Hub under its v1 index URL", () => {
    assert.deepEqual(credentialKeys("docker.io"), [
      "https://index.docker.io/v1/",
      "index.docker.io",
      "docker.io",
      "registry-1.docker.io",
    ]);
    const keys = credentialKeys("127.0.0.1:5000");
    assert.equal(keys[0], "127.0.0.1:5000", "what docker looks up and passes to helpers");
    for (const key of [
      "https://127.0.0.1:5000",
      "https://127.0.0.1:5000/",
      "https://127.0.0.1:5000/v1/",
      "https://127.0.0.1:5000/v2/",
      "http://127.0.0.1:5000",
      "http://127.0.0.1:5000/v2/",
    ])
      assert.ok(keys.includes(key), key);
    assert.ok(
      keys.indexOf("https://127.0.0.1:5000") < keys.indexOf("http://127.0.0.1:5000"),
      "https before http",
    );
  });
});
