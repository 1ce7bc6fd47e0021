import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { isImageConfig, scanImageConfig, secretByName } from "./config-entries.ts";

// Invented values, assembled so repository scanners do not flag this file.
const GITHUB = ["ghp", "_", "Q7vLk2Rt9sWx4Zb8Nm3Pc6Hd1Jf5Gy0Ua2Ke"].join("");

describe("secretByName", () => {
  it("takes a value of a variable whose name says secret, when it looks like one", () => {
    assert.equal(secretByName("DB_PASSWORD", "fP9xQ2mZ7vLr3Ks8Xy3b"), true);
    assert.equal(secretByName("api_key", "a8Fj2kL9qW3e"), true);
    assert.equal(secretByName("DEPLOY_SECRET", "3Jq9Zx7Lm2Vb8Nc4gGYv"), true);
  });

  it("stays quiet on paths, references, placeholders, versions and names that only sound secret", () => {
    assert.equal(secretByName("PASSWORD_FILE", "/run/secrets/db"), false);
    assert.equal(secretByName("DB_PASSWORD", "$DB_PASSWORD"), false);
    assert.equal(secretByName("DB_PASSWORD", "changeme-please"), false);
    assert.equal(secretByName("API_TOKEN", "<your token>"), false);
    assert.equal(secretByName("TOKEN_TTL", "3600"), false);
    assert.equal(secretByName("GPG_KEY", "A035C8C19219BA821ECEA86B64E628F8D684696D"), false);
    assert.equal(secretByName("NODE_VERSION", "22.11.0"), false);
    assert.equal(secretByName("PASS", "short"), false);
  });
});

describe("scanImageConfig", () => {
  const config = {
    rootfs: { type: "layers", diff_ids: [] },
    config: {
      Env: [
        "PATH=/usr/local/bin:/usr/bin",
        `GITHUB_TOKEN=${GITHUB}`,
        "DB_PASSWORD=fP9xQ2mZ7vLr3Ks8Xy3b",
        "EMPTY",
      ],
      Labels: { "org.opencontainers.image.title": "x", "ci.token": GITHUB },
    },
    history: [
      { created_by: "/bin/sh -c #(nop) ADD file:abc in / " },
      { created_by: "|2 DEPLOY_SECRET=3Jq9Zx7Lm2Vb8Nc4gGYv MODE=fast /bin/sh -c make" },
      { created_by: `RUN /bin/sh -c curl -H "Authorization: token ${GITHUB}" https://x # buildkit` },
      { empty_layer: true },
    ],
  };

  it("names the place, the kind and a preview for the environment, labels and history", () => {
    assert.deepEqual(scanImageConfig(config), [
      { path: "config: Env GITHUB_TOKEN", kind: "GitHub token", preview: "ghp_…a2Ke" },
      { path: "config: Env DB_PASSWORD", kind: "secret in DB_PASSWORD", preview: "fP…Xy3b" },
      { path: "config: Label ci.token", kind: "GitHub token", preview: "ghp_…a2Ke" },
      { path: "history: step 2", kind: "secret in build arg DEPLOY_SECRET", preview: "3J…gGYv" },
      { path: "history: step 3", kind: "GitHub token", preview: "ghp_…a2Ke" },
    ]);
  });

  it("recognises an image config, not a manifest, an index or a layer's legacy json", () => {
    assert.equal(isImageConfig(config), true);
    assert.equal(isImageConfig([{ Config: "x.json", Layers: [] }]), false);
    assert.equal(isImageConfig({ schemaVersion: 2, manifests: [] }), false);
    assert.equal(isImageConfig({ id: "abc", config: { Env: [] } }), false);
  });
});
