import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { loadConfig, parseConfig } from "./load.ts";

const FILE = "/projects/demo/vm.yaml";

/** Runs `fn`, which must throw a VmError, and returns that error. */
function vmErrorOf(fn: () => unknown): VmError {
  try {
    fn();
  } catch (error) {
    assert.ok(error instanceof VmError, `expected a VmError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected parseConfig to throw");
}

function invalid(text: string, file = FILE): VmError {
  const error = vmErrorOf(() => parseConfig(text, file));
  assert.equal(error.code, "CONFIG_INVALID");
  assert.equal(error.exitCode, 3);
  return error;
}

function syntaxError(text: string, file = FILE): VmError {
  const error = vmErrorOf(() => parseConfig(text, file));
  assert.equal(error.code, "CONFIG_SYNTAX");
  assert.equal(error.exitCode, 3);
  return error;
}

const FULL = `version: 1
provider: docker
project:
  name: demo-app
  workspace_path: /src
vm:
  box: debian:bookworm
  memory: 8gb
  cpus: 2
  user: developer
ports:
  - "3000:3000"
  - "127.0.0.1:8080:80"
  - "53:53/udp"
  - "5432:5432/tcp"
environment:
  NAME: value
  COUNT: 3
  RATIO: 1.5
  DEBUG: true
  QUIET: false
volumes:
  - cache:/home/developer/.cache
  - data:/data:ro
  - logs:/var/log:rw
`;

describe("parseConfig: a valid full config", () => {
  it("reads every field into the normalized Config", () => {
    assert.deepEqual(parseConfig(FULL, FILE), {
      file: FILE,
      dir: "/projects/demo",
      version: "1",
      project: { name: "demo-app", workspacePath: "/src" },
      box: { kind: "image", ref: "debian:bookworm" },
      memoryBytes: 8 * 1024 ** 3,
      nanoCpus: 2_000_000_000,
      user: "developer",
      ports: [
        { host: 3000, container: 3000, protocol: "tcp" },
        { host: 8080, container: 80, protocol: "tcp", hostIp: "127.0.0.1" },
        { host: 53, container: 53, protocol: "udp" },
        { host: 5432, container: 5432, protocol: "tcp" },
      ],
      environment: { NAME: "value", COUNT: "3", RATIO: "1.5", DEBUG: "true", QUIET: "false" },
      volumes: [
        { name: "cache", target: "/home/developer/.cache", readOnly: false },
        { name: "data", target: "/data", readOnly: true },
        { name: "logs", target: "/var/log", readOnly: false },
      ],
      warnings: [],
    });
  });

  it("keeps a string version as written and turns a number version into a string", () => {
    assert.equal(parseConfig('version: "1.2.1"\n', FILE).version, "1.2.1");
    assert.equal(parseConfig("version: 2\n", FILE).version, "2");
    assert.equal(parseConfig("version: 1.5\n", FILE).version, "1.5");
  });

  it("omits version, box, memory, cpus and user when they are not given", () => {
    const config = parseConfig("provider: docker\n", FILE);
    assert.deepEqual(Object.keys(config).sort(), [
      "dir",
      "environment",
      "file",
      "ports",
      "project",
      "volumes",
      "warnings",
    ]);
  });
});

describe("parseConfig: defaults", () => {
  it("loads an empty file with every default", () => {
    assert.deepEqual(parseConfig("", FILE), {
      file: FILE,
      dir: "/projects/demo",
      project: { name: "demo", workspacePath: "/workspace" },
      ports: [],
      environment: {},
      volumes: [],
      warnings: [],
    });
  });

  it("loads a file of only comments with every default", () => {
    assert.deepEqual(parseConfig("# nothing here yet\n", FILE).project, {
      name: "demo",
      workspacePath: "/workspace",
    });
  });

  it("defaults project.workspace_path to /workspace when only the name is given", () => {
    assert.deepEqual(parseConfig("project:\n  name: x\n", FILE).project, {
      name: "x",
      workspacePath: "/workspace",
    });
  });

  it("defaults project.name to the folder name, lowercased, with other characters turned into '-'", () => {
    assert.equal(parseConfig("", "/home/me/My Cool App/vm.yaml").project.name, "my-cool-app");
    assert.equal(parseConfig("", "/home/me/Under_Score.v2/vm.yaml").project.name, "under_score.v2");
  });

  it("strips leading characters a project name may not start with from the folder name", () => {
    assert.equal(parseConfig("", "/home/me/__hidden/vm.yaml").project.name, "hidden");
    assert.equal(parseConfig("", "/home/me/.dotted/vm.yaml").project.name, "dotted");
  });

  it("cuts a long folder name to 63 characters", () => {
    const long = "a".repeat(80);
    assert.equal(parseConfig("", `/home/me/${long}/vm.yaml`).project.name, "a".repeat(63));
  });

  it("falls back to 'project' when nothing usable is left of the folder name", () => {
    assert.equal(parseConfig("", "/home/me/日本語/vm.yaml").project.name, "project");
    assert.equal(parseConfig("", "/vm.yaml").project.name, "project");
  });
});

describe("parseConfig: vm.box", () => {
  it("reads a string box that is an image reference", () => {
    assert.deepEqual(parseConfig("vm:\n  box: ghcr.io/acme/dev:1.0\n", FILE).box, {
      kind: "image",
      ref: "ghcr.io/acme/dev:1.0",
    });
  });

  it("reads a relative Dockerfile path against the config's folder", () => {
    assert.deepEqual(parseConfig("vm:\n  box: ./docker/Dockerfile.dev\n", FILE).box, {
      kind: "dockerfile",
      dockerfile: "/projects/demo/docker/Dockerfile.dev",
      context: "/projects/demo/docker",
      args: {},
    });
  });

  it("reads the object form with context and stringified args", () => {
    const text = `vm:
  box:
    dockerfile: docker/Dockerfile
    context: ..
    args:
      NODE: 22
      SLIM: true
      NAME: dev
`;
    assert.deepEqual(parseConfig(text, FILE).box, {
      kind: "dockerfile",
      dockerfile: "/projects/demo/docker/Dockerfile",
      context: "/projects",
      args: { NODE: "22", SLIM: "true", NAME: "dev" },
    });
  });

  it("loads the unquoted `box: @vibe-base` form as a snapshot", () => {
    assert.deepEqual(parseConfig("vm:\n  box: @vibe-base\n", FILE).box, {
      kind: "snapshot",
      name: "vibe-base",
    });
  });

  it("loads the unquoted @ form followed by a comment", () => {
    assert.deepEqual(parseConfig("vm:\n  box: @vibe-base # the team's box\n", FILE).box, {
      kind: "snapshot",
      name: "vibe-base",
    });
  });

  it("still reports the right line for a later field error after an unquoted @ box", () => {
    const error = invalid("vm:\n  box: @vibe-base\n  cpus: 2\n  memory: lots\n");
    assert.match(error.message, /^\/projects\/demo\/vm\.yaml is invalid:\n {2}line 4, vm\.memory: /);
    assert.match(error.message, /\(got "lots"\)$/);
  });

  it("still reports the right line for a later unknown field after an unquoted @ box", () => {
    const error = invalid("vm:\n  box: @vibe-base\n\n\nmemroy: 4\n");
    assert.equal(
      error.message,
      "/projects/demo/vm.yaml is invalid:\n  line 5, memroy: unknown field (did you mean vm.memory?)",
    );
  });

  it("still reports the right line for a later YAML error after an unquoted @ box", () => {
    const error = syntaxError("vm:\n  box: @vibe-base\nvm: 2\n");
    assert.match(error.message, /\n {2}line 3, column 1: Map keys must be unique$/);
  });

  it("rejects other reserved characters at the start of a plain value as a syntax error", () => {
    const error = syntaxError("vm:\n  box: `vibe-base\n");
    assert.match(error.message, /line 2, column \d+: /);
  });

  it("rejects a snapshot name that is not valid with CONFIG_INVALID", () => {
    const error = invalid('vm:\n  box: "@Bad Name"\n');
    assert.match(error.message, /vm\.box: expected @ and a snapshot name/);
  });

  it("names the line of vm.box when the snapshot name is not valid", () => {
    const error = invalid('project:\n  name: demo\nvm:\n  box: "@Bad Name"\n');
    assert.match(error.message, /line 4, vm\.box/);
  });

  it("rejects an empty box string", () => {
    const error = invalid('vm:\n  box: ""\n');
    assert.match(error.message, /line 2, vm\.box: /);
  });

  it("rejects a box object without a dockerfile", () => {
    const error = invalid("vm:\n  box:\n    context: .\n");
    assert.match(
      error.message,
      /line 3, vm\.box\.dockerfile: expected the path of a Dockerfile \(got nothing\)$/,
    );
  });
});

describe("parseConfig: vm.memory and vm.cpus", () => {
  const memory = (value: string) => parseConfig(`vm:\n  memory: ${value}\n`, FILE).memoryBytes;
  const cpus = (value: string) => parseConfig(`vm:\n  cpus: ${value}\n`, FILE).nanoCpus;

  it("reads sizes with units as binary bytes", () => {
    assert.equal(memory("8gb"), 8 * 1024 ** 3);
    assert.equal(memory("512mb"), 512 * 1024 ** 2);
    assert.equal(memory("8GB"), 8 * 1024 ** 3);
    assert.equal(memory('"1.5g"'), 1.5 * 1024 ** 3);
  });

  it("reads a bare number as MB", () => {
    assert.equal(memory("2048"), 2048 * 1024 ** 2);
  });

  it("reads 'unlimited' memory as no limit", () => {
    assert.equal(memory("unlimited"), undefined);
  });

  it("reads a cpu count, whole or fractional, as NanoCpus", () => {
    assert.equal(cpus("4"), 4_000_000_000);
    assert.equal(cpus("1.5"), 1_500_000_000);
  });

  it("reads 'unlimited' cpus as no limit", () => {
    assert.equal(cpus("unlimited"), undefined);
  });

  it("rejects a memory size of zero written as a string, as it rejects the number 0", () => {
    invalid("vm:\n  memory: 0\n");
    invalid('vm:\n  memory: "0mb"\n');
  });
});

describe("parseConfig: errors name the line and the field", () => {
  it("reports a bad memory value with its line, field, expectation and value", () => {
    const error = invalid("version: 1\nproject:\n  name: demo\nvm:\n  memory: lots\n");
    assert.equal(
      error.message,
      '/projects/demo/vm.yaml is invalid:\n  line 5, vm.memory: expected a number of MB, a size such as "8gb" or "512mb", a percentage such as "50%", or "unlimited" (got "lots")',
    );
    assert.match(error.hint ?? "", /docs\/configuration\.md/);
  });

  it("reports zero or negative cpus", () => {
    assert.equal(
      invalid("vm:\n  cpus: 0\n").message,
      '/projects/demo/vm.yaml is invalid:\n  line 2, vm.cpus: expected a positive number of CPUs, a percentage such as "75%", or "unlimited" (got 0)',
    );
    assert.match(invalid("vm:\n  cpus: -1\n").message, /line 2, vm\.cpus: /);
  });

  it("reports an unknown top-level field at the line of its key", () => {
    assert.equal(
      invalid("version: 1\nvm:\n  cpus: 2\n\nmemroy: 4gb\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 5, memroy: unknown field (did you mean vm.memory?)",
    );
  });

  it("reports an unknown nested field with its full path", () => {
    assert.equal(
      invalid("vm:\n  cpus: 2\n  memroy: 4gb\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 3, vm.memroy: unknown field (did you mean vm.memory?)",
    );
  });

  it("reports an unknown field inside the box object", () => {
    assert.equal(
      invalid("vm:\n  box:\n    dockerfile: ./Dockerfile\n    contxt: .\n").message,
      "/projects/demo/vm.yaml is invalid:\n  line 4, vm.box.contxt: unknown field (did you mean vm.box.context?)",
    );
  });

  it("reports several problems sorted by line", () => {
    const error = invalid("vm:\n  memory: lots\nprovider: podman\nextra: 1\n");
    const lines = error.message.split("\n").slice(1);
    assert.equal(lines.length, 3);
    assert.match(lines[0]!, /^ {2}line 2, vm\.memory: /);
    assert.equal(
      lines[1],
      '  line 3, provider: expected "docker": vm runs environments on Docker only (got "podman")',
    );
    assert.equal(lines[2], "  line 4, extra: unknown field");
  });

  it("reports a root that is not a mapping", () => {
    assert.equal(
      invalid("- a\n- b\n").message,
      '/projects/demo/vm.yaml is invalid:\n  line 1, the file: expected a mapping of fields (version, provider, project, vm, ports, environment, volumes) (got ["a","b"])',
    );
    assert.match(invalid("just a string\n").message, /line 1, the file: expected a mapping of fields/);
  });

  it("reports a section of the wrong type", () => {
    assert.match(invalid("vm: [1]\n").message, /\n {2}line 1, vm: .*\(got \[1\]\)$/);
  });

  it("reports a bad port with the expected form", () => {
    assert.equal(
      invalid('ports:\n  - "3000:3000"\n  - "abc"\n').message,
      '/projects/demo/vm.yaml is invalid:\n  line 3, ports[1]: expected "host:guest" with ports 1-65535, such as "3000:3000" (optionally "127.0.0.1:3000:3000" or "/udp") (got "abc")',
    );
  });

  it("reports a port written as a bare number", () => {
    assert.match(
      invalid("ports:\n  - 3000\n").message,
      /line 2, ports\[0\]: expected "host:guest".*\(got 3000\)$/,
    );
  });

  it("rejects a port number above 65535", () => {
    invalid('ports:\n  - "70000:80"\n');
  });

  it("reports a bad volume with the expected form", () => {
    assert.equal(
      invalid("volumes:\n  - cache:relative/path\n").message,
      '/projects/demo/vm.yaml is invalid:\n  line 2, volumes[0]: expected "name:/absolute/path" such as "cache:/home/developer/.cache" (got "cache:relative/path")',
    );
  });

  it("reports a bad project name", () => {
    assert.match(
      invalid("project:\n  name: Bad Name\n").message,
      /line 2, project\.name: expected lowercase letters, digits.*\(got "Bad Name"\)$/,
    );
  });

  it("reports a relative workspace_path", () => {
    assert.match(
      invalid("project:\n  workspace_path: src\n").message,
      /line 2, project\.workspace_path: expected an absolute path such as \/workspace \(got "src"\)$/,
    );
  });

  it("reports an empty user", () => {
    assert.match(
      invalid('vm:\n  user: ""\n').message,
      /line 2, vm\.user: expected a user name or uid \(got ""\)$/,
    );
  });

  it("says the variable name is wrong for an environment key that is not a variable name", () => {
    const error = invalid("environment:\n  1BAD: x\n");
    assert.match(
      error.message,
      /line 2, environment\.1BAD: expected a variable name of letters, digits and '_'/,
    );
  });

  it("does not blame the variable name for an environment value that is null", () => {
    const error = invalid("environment:\n  GOOD_NAME:\n");
    assert.match(error.message, /line 2, environment\.GOOD_NAME: /);
    assert.doesNotMatch(error.message, /variable name/);
  });
});

describe("parseConfig: YAML syntax errors", () => {
  it("reports a duplicate key as a syntax error at the second key", () => {
    assert.equal(
      syntaxError("vm:\n  cpus: 1\nvm:\n  cpus: 2\n").message,
      "/projects/demo/vm.yaml is not valid YAML:\n  line 3, column 1: Map keys must be unique",
    );
  });

  it("reports an unclosed flow sequence with a line and column", () => {
    assert.match(
      syntaxError("ports: [\n").message,
      /^\/projects\/demo\/vm\.yaml is not valid YAML:\n {2}line \d+, column \d+: /,
    );
  });
});

describe("loadConfig", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vm-load-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("reads and parses the file", async () => {
    const file = join(dir, "vm.yaml");
    writeFileSync(file, "vm:\n  cpus: 3\n");
    const config = await loadConfig(file);
    assert.equal(config.nanoCpus, 3_000_000_000);
    assert.equal(config.dir, dir);
  });

  it("reports a missing file as CONFIG_NOT_FOUND with exit code 3", async () => {
    const file = join(dir, "missing.yaml");
    await assert.rejects(loadConfig(file), (error: unknown) => {
      assert.ok(error instanceof VmError);
      assert.equal(error.code, "CONFIG_NOT_FOUND");
      assert.equal(error.exitCode, 3);
      assert.equal(error.message, `Config file ${file} does not exist`);
      return true;
    });
  });
});
