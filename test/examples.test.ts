import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { availableEngines } from "./helpers/engines.ts";
import { REPO, runVm } from "./helpers/vm.ts";

/**
 * examples/ stays true to vm: the example config loads, the base Dockerfile has the shape the README
 * promises, and the commands the README shows are the design document's own. (A full build of
 * Dockerfile.vibe takes minutes and the internet's package archives; it is not part of the suite.)
 */
const examples = join(REPO, "examples");
const read = (path: string) => readFileSync(join(examples, path), "utf8");

describe("examples", () => {
  it("base-images/vm-base.yaml is a valid vm.yaml naming the Dockerfile beside it", async () => {
    const res = await runVm(["doctor", "--config", join(examples, "base-images", "vm-base.yaml"), "--json"], {
      cwd: examples,
      engine: availableEngines()[0]!,
    });
    const checks = JSON.parse(res.stdout) as {
      name: string;
      ok: boolean;
      warning?: boolean;
      detail: string;
    }[];
    const config = checks.filter((c) => c.name === "config");
    assert.deepEqual(
      config.map((c) => [c.ok, c.warning ?? false]),
      [[true, false]],
      JSON.stringify(config),
    );
    assert.match(config[0]!.detail, /project 'vibe-base-builder'/);
  });

  it("base-images/Dockerfile.vibe: a parametrised base, a non-root developer user, the workspace", () => {
    const lines = read("base-images/Dockerfile.vibe")
      .split("\n")
      .filter((l) => l.trim() && !l.startsWith("#"));
    const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
    assert.ok(at(/^ARG BASE=debian:/) === 0, "ARG BASE comes first");
    assert.equal(at(/^FROM \$\{BASE\}$/), 1);
    for (const pkg of ["nodejs", "npm", "python3", "cargo", "rustc", "chromium", "git"])
      assert.ok(
        lines.some((l) => new RegExp(`\\b${pkg}\\b`).test(l)),
        `installs ${pkg}`,
      );
    for (const cli of ["@anthropic-ai/claude-code", "@google/gemini-cli", "@openai/codex", "playwright"])
      assert.ok(
        lines.some((l) => l.includes(cli)),
        `installs ${cli}`,
      );
    assert.ok(at(/^USER developer$/) > at(/useradd .*developer/), "the user exists before USER");
    assert.ok(at(/^WORKDIR \/workspace$/) > 0);
  });

  it("base-images/README.md shows the design document's commands as the document writes them", () => {
    const readme = read("base-images/README.md");
    const design = readFileSync(join(REPO, "docs/design/snapshot-export-import-proposal.md"), "utf8");
    for (const command of [
      "vm create --config vm-base.yaml",
      "vm snapshot export vibe-base --output ~/Desktop/vibe-base.snapshot.tar.gz",
      "vm snapshot import ~/Downloads/vibe-base.snapshot.tar.gz",
      'echo "vm.box: @vibe-2024-10" >> vm.yaml',
      "  box: @vibe-base  # ← References imported snapshot!",
    ]) {
      assert.ok(design.includes(command), `the design document has: ${command}`);
      assert.ok(readme.includes(command), `the README has: ${command}`);
    }
    assert.equal(
      read("base-images/vm-base.yaml"),
      /cat > vm-base\.yaml <<EOF\n([\s\S]*?)EOF/.exec(design)![1],
    );
  });
});
