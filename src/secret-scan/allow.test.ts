import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import { allowPatterns, withoutAllowed } from "./allow.ts";
import type { SecretFinding } from "./secrets.ts";

const file = (path: string, kind: string): SecretFinding => ({ path, kind, layer: "l", source: "file" });
const FINDINGS: SecretFinding[] = [
  file("root/.ssh/id_rsa", "private key"),
  file("srv/app/test/fixtures/server.pem", "private key"),
  file("home/dev/notes.md", "Slack webhook"),
  { path: "config: Env GITHUB_TOKEN", kind: "GitHub token", layer: "config", source: "config" },
  { path: "history: step 4", kind: "npm token", layer: "config", source: "config" },
];
const kept = (patterns: string[]) => withoutAllowed(FINDINGS, patterns).findings.map((f) => f.path);

describe("withoutAllowed", () => {
  it("matches places with globs, with or without the leading slash", () => {
    assert.deepEqual(kept(["/srv/app/test/*"]), [
      "root/.ssh/id_rsa",
      "home/dev/notes.md",
      "config: Env GITHUB_TOKEN",
      "history: step 4",
    ]);
    assert.deepEqual(kept(["config:*", "history: step 4"]), [
      "root/.ssh/id_rsa",
      "srv/app/test/fixtures/server.pem",
      "home/dev/notes.md",
    ]);
  });

  it("matches a kind (any case) or a file name, never a kind by accident of its config place", () => {
    assert.deepEqual(kept(["slack WEBHOOK", "*.pem"]), [
      "root/.ssh/id_rsa",
      "config: Env GITHUB_TOKEN",
      "history: step 4",
    ]);
    assert.deepEqual(kept(["GITHUB_TOKEN"]).length, FINDINGS.length);
    assert.equal(withoutAllowed(FINDINGS, ["private key"]).allowed, 2);
  });
});

describe("allowPatterns", () => {
  it("reads secrets.ignore (comments and blanks dropped) and adds --allow", async () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-allow-"));
    writeFileSync(
      join(dir, "secrets.ignore"),
      "# known fixtures\n\n/srv/app/test/*  # the app's tests\n*.pem\n",
    );
    assert.deepEqual(await allowPatterns(dir, ["config:*"]), ["/srv/app/test/*", "*.pem", "config:*"]);
    assert.deepEqual(await allowPatterns(join(dir, "absent"), []), []);
  });
});
