import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseChallenges, scopeFor, tokenRequestUrl } from "./challenge.ts";

describe("WWW-Authenticate challenges (registry/challenge.ts)", () => {
  it("reads Docker Hub's Bearer challenge, a comma inside the quoted scope included", () => {
    const header =
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push"';
    assert.deepEqual(parseChallenges(header), [
      {
        scheme: "bearer",
        params: {
          realm: "https://auth.docker.io/token",
          service: "registry.docker.io",
          scope: "repository:samalba/my-app:pull,push",
        },
      },
    ]);
  });

  it("reads GHCR's challenge, and the error parameter a registry adds when the token lacks a scope", () => {
    assert.deepEqual(
      parseChallenges(
        'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/vibe:pull"',
      ),
      [
        {
          scheme: "bearer",
          params: { realm: "https://ghcr.io/token", service: "ghcr.io", scope: "repository:acme/vibe:pull" },
        },
      ],
    );
    const [challenge] = parseChallenges(
      'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:acme/vibe:pull,push",error="insufficient_scope"',
    );
    assert.equal(challenge?.params.error, "insufficient_scope");
  });

  it("reads distribution's Basic challenge", () => {
    assert.deepEqual(parseChallenges('Basic realm="Registry Realm"'), [
      { scheme: "basic", params: { realm: "Registry Realm" } },
    ]);
  });

  it("splits several challenges in one value (repeated headers joined with ', ')", () => {
    const challenges = parseChallenges(
      'Bearer realm="https://auth.example.com/token", service="registry", Basic realm="x, y", Negotiate',
    );
    assert.deepEqual(challenges, [
      { scheme: "bearer", params: { realm: "https://auth.example.com/token", service: "registry" } },
      { scheme: "basic", params: { realm: "x, y" } },
      { scheme: "negotiate", params: {} },
    ]);
    assert.deepEqual(
      parseChallenges("Basic, Bearer realm=https://a/t").map((c) => c.scheme),
      ["basic", "bearer"],
      "a scheme with no parameters, then the next",
    );
  });

  it("scheme and parameter names are case-insensitive; values keep their case", () => {
    assert.deepEqual(parseChallenges('BEARER Realm="https://A/T",SERVICE=Reg'), [
      { scheme: "bearer", params: { realm: "https://A/T", service: "Reg" } },
    ]);
  });

  it("unescapes quoted strings, and allows spaces around '=' and ','", () => {
    assert.deepEqual(parseChallenges('Bearer realm = "a \\"quoted\\" \\\\ realm" ,  service=svc'), [
      { scheme: "bearer", params: { realm: 'a "quoted" \\ realm', service: "svc" } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm=""'), [{ scheme: "basic", params: { realm: "" } }]);
  });

  it("keeps the first of a repeated parameter, and takes any name as a plain parameter", () => {
    assert.deepEqual(parseChallenges("Bearer realm=a, realm=b, __proto__=p, constructor=c")[0]?.params, {
      realm: "a",
      ["__proto__"]: "p",
      constructor: "c",
    });
  });

  it("never throws on garbage: skips what it cannot read and returns the rest", () => {
    const garbage = [
      "",
      " ",
      ",,,",
      "=",
      '"',
      '"unterminated',
      "Bearer =x",
      "@@@ !!",
      "Bearer realm=",
      "\u0000",
    ];
    for (const header of garbage) assert.doesNotThrow(() => parseChallenges(header), JSON.stringify(header));
    assert.deepEqual(parseChallenges(""), []);
    assert.deepEqual(parseChallenges(",, ,"), []);
    assert.deepEqual(
      parseChallenges('Bearer realm="https://a/t", [junk] x, service=s'),
      [{ scheme: "bearer", params: { realm: "https://a/t", service: "s" } }],
      "a garbled parameter is skipped to the next comma",
    );
    assert.deepEqual(
      parseChallenges('Bearer service=s, realm="https://a/t'),
      [{ scheme: "bearer", params: { service: "s" } }],
      "an unterminated quoted value is dropped, not cut short",
    );
    assert.deepEqual(
      parseChallenges('realm="x", Basic realm="y"'),
      [{ scheme: "basic", params: { realm: "y" } }],
      "a parameter with no scheme before it is no challenge",
    );
    assert.deepEqual(parseChallenges("Bearer realm=a junk, service=s")[0]?.params, {
      realm: "a",
      service: "s",
    });
  });

  it("builds the token request: realm, service, then one scope parameter per scope", () => {
    const [challenge] = parseChallenges(
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"',
    );
    assert.equal(
      tokenRequestUrl(challenge!, [
        scopeFor("library/ubuntu", ["pull"]),
        scopeFor("team/vibe", ["pull", "push"]),
      ]),
      "https://auth.docker.io/token?service=registry.docker.io&scope=repository%3Alibrary%2Fubuntu%3Apull&scope=repository%3Ateam%2Fvibe%3Apull%2Cpush",
    );
    assert.equal(
      tokenRequestUrl({ scheme: "bearer", params: { realm: "https://a.example/t" } }, []),
      "https://a.example/t",
      "no service, no scopes: the realm as it is",
    );
  });

  it("keeps the realm's own query exactly as written, and adds to it", () => {
    const challenge = {
      scheme: "bearer",
      params: { realm: "https://a.example/t?tenant=x%20y&b=1", service: "s" },
    };
    assert.equal(
      tokenRequestUrl(challenge, ["repository:a:pull"]),
      "https://a.example/t?tenant=x%20y&b=1&service=s&scope=repository%3Aa%3Apull",
    );
  });

  it("has no token request for a challenge without a usable realm", () => {
    for (const realm of [undefined, "", "not a url", "file:///etc/passwd", "ftp://a/t"]) {
      const params: Record<string, string> = realm === undefined ? {} : { realm };
      assert.equal(tokenRequestUrl({ scheme: "bearer", params }, ["repository:a:pull"]), undefined, realm);
    }
  });

  it("a repository scope names the repository and its actions", () => {
    assert.equal(scopeFor("team/vibe", ["pull", "push"]), "repository:team/vibe:pull,push");
    assert.equal(scopeFor("library/ubuntu", ["pull"]), "repository:library/ubuntu:pull");
  });
});
