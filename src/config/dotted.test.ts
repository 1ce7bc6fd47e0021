import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { parseConfig } from "./load.ts";

const FILE = "/projects/demo/vm.yaml";

function errorOf(text: string): VmError {
  try {
    parseConfig(text, FILE);
  } catch (error) {
    assert.ok(error instanceof VmError, String(error));
    assert.equal(error.exitCode, 3);
    return error;
  }
  assert.fail("expected parseConfig to throw");
}

describe("dotted keys at the top level", () => {
  it("loads a file that is only `vm.box: @x`, as `echo ... > vm.yaml` writes it", () => {
    assert.deepEqual(parseConfig("vm.box: @vibe-2024-10\n", FILE), {
      file: FILE,
      dir: "/projects/demo",
      project: { name: "demo", workspacePath: "/workspace" },
      box: { kind: "snapshot", name: "vibe-2024-10" },
      ports: [],
      environment: {},
      volumes: [],
      warnings: [],
    });
  });

  it("sets nested fields of several sections", () => {
    const config = parseConfig(
      "vm.memory: 4gb\nproject.name: y\nproject.workspace_path: /w\nenvironment.NODE_ENV: dev\nvm.box.dockerfile: ./D\n",
      FILE,
    );
    assert.equal(config.memoryBytes, 4 * 1024 ** 3);
    assert.deepEqual(config.project, { name: "y", workspacePath: "/w" });
    assert.deepEqual(config.environment, { NODE_ENV: "dev" });
    assert.deepEqual(config.box, {
      kind: "dockerfile",
      dockerfile: "/projects/demo/D",
      context: "/projects/demo",
      args: {},
    });
  });

  it("adds to a nested block, in either order", () => {
    const appended = parseConfig("vm:\n  memory: 4gb\nvm.cpus: 2\n", FILE);
    assert.equal(appended.memoryBytes, 4 * 1024 ** 3);
    assert.equal(appended.nanoCpus, 2e9);
    const before = parseConfig("vm.cpus: 2\nvm:\n  memory: 4gb\n", FILE);
    assert.equal(before.memoryBytes, 4 * 1024 ** 3);
    assert.equal(before.nanoCpus, 2e9);
    assert.deepEqual(before.warnings, []);
  });

  it("fills a section left empty (`vm:` with its fields commented out)", () => {
    assert.deepEqual(parseConfig("vm:\n  # box: ./Dockerfile\nvm.box: '@x'\n", FILE).box, {
      kind: "snapshot",
      name: "x",
    });
  });

  it("loads the unquoted @ with a comment, as the design document writes it", () => {
    assert.deepEqual(parseConfig("vm:\n  box: @vibe-base  # ← comment\n", FILE).box, {
      kind: "snapshot",
      name: "vibe-base",
    });
    assert.deepEqual(parseConfig("vm.box: @vibe-base  # ← comment\n", FILE).box, {
      kind: "snapshot",
      name: "vibe-base",
    });
  });

  it("does not split keys inside maps, nor keys under no known section", () => {
    assert.equal(
      errorOf("vm:\n  box.name: x\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 2, vm.box.name: unknown field (did you mean vm.box_name?)",
    );
    assert.equal(
      errorOf("vmm.box: x\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 1, vmm.box: unknown field (did you mean vm.box?)",
    );
  });

  it("reports a dotted key that is no field, with a suggestion", () => {
    assert.equal(
      errorOf("version: 1\nvm.bx: x\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 2, vm.bx: unknown field (did you mean vm.box?)",
    );
  });

  it("reports an invalid value at the dotted key's line", () => {
    assert.match(
      errorOf("vm:\n  cpus: 2\n\nvm.memory: lots\n").message,
      /^[^\n]+\n {2}line 4, vm\.memory: expected a number of MB/,
    );
    assert.match(errorOf('project.name: "Bad Name"\n').message, /line 1, project\.name: expected lowercase/);
  });
});

describe("a field set twice", () => {
  const EXISTING =
    "version: 1\nproject:\n  name: app\nvm:\n  box: ./Dockerfile\n  memory: 4gb\n\n# team box\nvm.box: @vibe-2024-10\n";

  it("takes the later line and warns naming both (nested, then dotted)", () => {
    const config = parseConfig(EXISTING, FILE);
    assert.deepEqual(config.box, { kind: "snapshot", name: "vibe-2024-10" });
    assert.equal(config.memoryBytes, 4 * 1024 ** 3);
    assert.deepEqual(config.warnings, [
      "vm.yaml sets vm.box twice: line 5 (./Dockerfile) and line 9 (@vibe-2024-10); the later one, line 9, is used",
    ]);
  });

  it("takes the later line (dotted, then nested)", () => {
    const config = parseConfig("vm.box: '@old'\nvm:\n  box: debian:bookworm\n", FILE);
    assert.deepEqual(config.box, { kind: "image", ref: "debian:bookworm" });
    assert.deepEqual(config.warnings, [
      "vm.yaml sets vm.box twice: line 1 (@old) and line 3 (debian:bookworm); the later one, line 3, is used",
    ]);
  });

  it("takes the later line for two dotted keys that set the same field", () => {
    const config = parseConfig("vm.box: {dockerfile: ./A}\nvm.box.dockerfile: ./B\n", FILE);
    assert.equal(config.box?.kind === "dockerfile" && config.box.dockerfile, "/projects/demo/B");
    assert.deepEqual(config.warnings, [
      "vm.yaml sets vm.box.dockerfile twice: line 1 (./A) and line 2 (./B); the later one, line 2, is used",
    ]);
  });

  it("reports errors of the winning value at its line", () => {
    assert.match(errorOf("vm:\n  memory: 4gb\nvm.memory: lots\n").message, /line 3, vm\.memory: /);
  });

  it("stays a YAML error when the same key is written twice", () => {
    const error = errorOf("vm.box: '@a'\nvm.box: '@b'\n");
    assert.equal(error.code, "CONFIG_SYNTAX");
    assert.match(error.message, /line 2, column 1: Map keys must be unique/);
  });
});

describe("a dotted key under a value that is not a map", () => {
  it("is an error naming both lines (the value first)", () => {
    const error = errorOf("vm: 3\nvm.box: x\n");
    assert.equal(error.code, "CONFIG_INVALID");
    assert.match(
      error.message,
      /\n {2}line 2, vm\.box: cannot be set, because line 1 sets vm to 3, which is not a map$/,
    );
  });

  it("is an error naming both lines (the dotted key first)", () => {
    assert.equal(
      errorOf("vm.box: x\n\nvm: 3\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 3, vm: cannot be 3, because line 1 sets a field inside vm, so it must be a map",
    );
  });

  it("is an error for a field under a string box", () => {
    assert.match(
      errorOf("vm.box: debian\nvm.box.context: .\n").message,
      /line 2, vm\.box\.context: cannot be set, because line 1 sets vm\.box to debian, which is not a map/,
    );
  });
});
