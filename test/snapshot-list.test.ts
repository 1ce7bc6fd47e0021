import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { availableEngines } from "./helpers/engines.ts";
import { ensureToolsImage } from "./helpers/fixtures.ts";
import { cleanupRun, makeProject, runVm, uniqueName } from "./helpers/vm.ts";

/**
 * The design document's Phase 4: `vm snapshot list` shows the type, the platform, the languages and
 * tools installed, and the source (built here, or imported from which file); json carries them always.
 */
const engines = availableEngines();
const dir = mkdtempSync(join(tmpdir(), "vm-list-"));
const homeA = join(dir, "a");
const homeB = join(dir, "b");

after(() => {
  for (const engine of engines) cleanupRun(engine);
  rmSync(dir, { recursive: true, force: true });
});

interface Row {
  name: string;
  source: string;
  imported_from: string | null;
  languages: Record<string, string>;
  tools: string[];
}

describe("vm snapshot list: languages, tools and source", () => {
  it("--wide shows what is installed and where it came from; json carries it; --project filters", async () => {
    const a = { engine: engines[0]!, env: { XDG_CONFIG_HOME: homeA } };
    const b = { engine: engines.at(-1)!, env: { XDG_CONFIG_HOME: homeB } };
    const name = uniqueName("wide");
    const p = makeProject({ Dockerfile: `FROM ${ensureToolsImage(a.engine)}\n` });
    try {
      const made = await runVm(
        ["snapshot", "create", `@${name}`, "--from-dockerfile", join(p.dir, "Dockerfile")],
        {
          cwd: dir,
          ...a,
        },
      );
      assert.equal(made.code, 0, made.stderr);
    } finally {
      p.cleanup();
    }
    const wide = await runVm(["snapshot", "list", "--wide"], { cwd: dir, ...a });
    assert.equal(wide.code, 0, wide.stderr);
    assert.match(
      wide.stdout,
      /^NAME\s+TYPE\s+CREATED\s+SIZE\s+PLATFORM\s+DESCRIPTION\s+LANGUAGES\s+TOOLS\s+SOURCE\n/,
    );
    assert.match(
      wide.stdout,
      new RegExp(
        `@${name}\\s+base\\s.*node 22\\.11\\.0, python 3\\.13\\.0, go 1\\.22\\.1\\s+@anthropic-ai/claude-code, cargo-watch\\s+built here\\n`,
      ),
    );
    // The default table keeps the design document's columns.
    const plain = await runVm(["snapshot", "list"], { cwd: dir, ...a });
    assert.doesNotMatch(plain.stdout, /LANGUAGES|SOURCE/);
    const rows = JSON.parse(
      (await runVm(["snapshot", "list", "--format", "json"], { cwd: dir, ...a })).stdout,
    ) as Row[];
    const row = rows.find((r) => r.name === name)!;
    assert.deepEqual(row.languages, { node: "22.11.0", python: "3.13.0", go: "1.22.1" });
    assert.deepEqual(row.tools, ["@anthropic-ai/claude-code", "cargo-watch"]);
    assert.equal(row.source, "built");
    assert.equal(row.imported_from, null);

    const file = join(dir, `${name}.snapshot.tar.zst`);
    assert.equal((await runVm(["snapshot", "export", `@${name}`, "-o", file], { cwd: dir, ...a })).code, 0);
    const imported = await runVm(["snapshot", "import", file], { cwd: dir, ...b });
    assert.equal(imported.code, 0, imported.stderr);
    const there = await runVm(["snapshot", "list", "-w"], { cwd: dir, ...b });
    assert.match(
      there.stdout,
      new RegExp(`@${name}\\s.*cargo-watch\\s+imported from ${name}\\.snapshot\\.tar\\.zst\\n`),
    );
    const importedRows = JSON.parse(
      // --json, as vm's other commands take it, is --format json.
      (await runVm(["snapshot", "list", "--json"], { cwd: dir, ...b })).stdout,
    ) as Row[];
    assert.equal(importedRows.find((r) => r.name === name)?.imported_from, file);
    const none = await runVm(["snapshot", "list", "--project", "no-such-project", "--format", "json"], {
      cwd: dir,
      ...b,
    });
    assert.deepEqual(JSON.parse(none.stdout), []);
  });
});
