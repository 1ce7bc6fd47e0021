import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { describe, it } from "node:test";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
// @ts-expect-error: scripts/layers.js is plain JavaScript without declarations.
import * as layersScript from "../scripts/layers.js";
import { REPO } from "./helpers/vm.ts";

const { findCycle, layers, layersPlugin, moduleOf } = layersScript as unknown as {
  findCycle: (table: Record<string, string[]>) => string[] | undefined;
  layers: Record<string, string[]>;
  layersPlugin: unknown;
  moduleOf: (relative: string) => string;
};
const table = layers;
const SRC = join(REPO, "src");

/** Lints `code` as if it were the file at `file` (relative to src/), with the layers rule alone. */
async function lintAs(file: string, code: string): Promise<string[]> {
  const eslint = new ESLint({
    cwd: REPO,
    overrideConfigFile: true,
    overrideConfig: [
      {
        files: ["**/*.ts"],
        languageOptions: { parser: tseslint.parser },
        plugins: { vm: layersPlugin as never },
        rules: { "vm/layers": "error" },
      },
    ],
  });
  const [result] = await eslint.lintText(code, { filePath: join(SRC, file) });
  return result!.messages.map((m) => m.message);
}

function folders(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => statSync(join(dir, name)).isDirectory())
    .flatMap((name) => [join(dir, name), ...folders(join(dir, name))]);
}

describe("the layers of src/ (scripts/layers.js)", () => {
  it("refuses an import against the arrows and names the rule's table", async () => {
    const messages = await lintAs("env/box.ts", 'import { run } from "../commands/index.ts";\n');
    assert.equal(messages.length, 1);
    assert.match(messages[0]!, /^env may not import commands \(allowed: .*\); see scripts\/layers\.js/);
  });

  it("allows an import along the arrows, within a module, and of packages", async () => {
    const code = [
      'import { VmError } from "../errors.ts";',
      'import { Label } from "../engine/labels.ts";',
      'import { resolveBox } from "./box.ts";',
      'import { parse } from "yaml";',
    ].join("\n");
    assert.deepEqual(await lintAs("env/environment.ts", code), []);
  });

  it("checks re-exports and dynamic imports too", async () => {
    const messages = await lintAs(
      "engine/labels.ts",
      'export { x } from "../snapshot/manage.ts";\nawait import("../cli/output.ts");\n',
    );
    assert.equal(messages.length, 2);
    assert.match(messages[0]!, /engine may not import snapshot/);
    assert.match(messages[1]!, /engine may not import cli/);
  });

  it("lets tests beside the code import what they need", async () => {
    assert.deepEqual(await lintAs("env/box.test.ts", 'import "../commands/index.ts";\n'), []);
  });

  it("maps a file to the deepest listed folder holding it", () => {
    assert.equal(moduleOf(join("engine", "docker", "engine.ts")), "engine/docker");
    assert.equal(moduleOf(join("engine", "labels.ts")), "engine");
    assert.equal(moduleOf(join("snapshot", "create", "create.ts")), "snapshot/create");
    assert.equal(moduleOf("main.ts"), "main");
  });

  it("has no cycle, and finds one when an arrow would close a loop", () => {
    assert.equal(findCycle(table), undefined);
    assert.deepEqual(findCycle({ ...table, lib: ["errors", "env"] }), ["lib", "env", "lib"]);
  });

  it("knows every folder and root file of src/, and docs/architecture.md describes every module", () => {
    const architecture = readFileSync(join(REPO, "docs/architecture.md"), "utf8");
    const roots = readdirSync(SRC)
      .filter((name) => name.endsWith(".ts") && !name.endsWith(".test.ts"))
      .map((name) => name.replace(/\.ts$/, ""));
    const top = folders(SRC)
      .map((dir) => relative(SRC, dir).split("/")[0]!)
      .filter((name, i, all) => all.indexOf(name) === i);
    for (const name of [...roots, ...top]) assert.ok(name in table, `${name} is missing from the table`);
    for (const name of Object.keys(table)) {
      if (name === "bin") continue;
      assert.ok(architecture.includes(`\`${name}`), `docs/architecture.md does not describe ${name}`);
    }
  });
});
