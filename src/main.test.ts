import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { after, before, describe, it } from "node:test";
import { main } from "./main.ts";

const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as {
  version: string;
};

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Promise<Run> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (chunk: Buffer) => (out += chunk.toString("utf8")));
  stderr.on("data", (chunk: Buffer) => (err += chunk.toString("utf8")));
  const code = await main(argv, {
    io: { stdin, stdout, stderr },
    env: { DOCKER_HOST: "unix:///nonexistent/docker.sock", ...env },
    cwd,
  });
  stdin.end();
  return { code, stdout: out, stderr: err };
}

describe("main (no engine needed)", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "vm-main-"));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it("prints the package.json version for --version and exits 0", async () => {
    const result = await run(["--version"], dir);
    assert.deepEqual(result, { code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  it("prints the version for -V too", async () => {
    assert.deepEqual(await run(["-V"], dir), { code: 0, stdout: `${pkg.version}\n`, stderr: "" });
  });

  it("lists every command for --help and exits 0", async () => {
    const result = await run(["--help"], dir);
    assert.equal(result.code, 0);
    assert.equal(result.stderr, "");
    assert.match(result.stdout, /^Usage: vm \[options\] \[command\]/);
    for (const command of [
      "create",
      "start",
      "stop",
      "restart",
      "destroy",
      "status",
      "list",
      "exec",
      "ssh",
      "logs",
      "doctor",
      "help",
    ]) {
      assert.match(result.stdout, new RegExp(`^ {2}${command}\\b`, "m"), `--help lists ${command}`);
    }
  });

  it("prints a command's help for `<command> --help` and exits 0", async () => {
    const result = await run(["exec", "--help"], dir);
    assert.equal(result.code, 0);
    assert.match(result.stdout, /^Usage: vm exec \[options\] -- <command\.\.\.>/);
    assert.match(result.stdout, /--no-tty/);
  });

  it("refuses an unknown command with exit code 2 and says so on stderr", async () => {
    const result = await run(["frobnicate"], dir);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /unknown command 'frobnicate'/);
  });

  it("refuses an unknown option with exit code 2", async () => {
    const result = await run(["status", "--bogus"], dir);
    assert.equal(result.code, 2);
    assert.match(result.stderr, /unknown option '--bogus'/);
  });

  it("suggests the command meant by a typo, as vm's other errors read", async () => {
    assert.deepEqual(await run(["stauts"], dir), {
      code: 2,
      stdout: "",
      stderr:
        "Error: unknown command 'stauts'\nHint: did you mean `vm status`? (`vm --help` lists the commands)\n",
    });
  });

  it("suggests the subcommand meant by a typo", async () => {
    assert.deepEqual(await run(["snapshot", "lsit"], dir), {
      code: 2,
      stdout: "",
      stderr:
        "Error: unknown command 'lsit' for vm snapshot\nHint: did you mean `vm snapshot list`? (`vm snapshot --help` lists the commands)\n",
    });
  });

  it("suggests the option meant by a typo, naming the command", async () => {
    assert.deepEqual(await run(["snapshot", "export", "@base", "--outptu", "x.tar"], dir), {
      code: 2,
      stdout: "",
      stderr:
        "Error: unknown option '--outptu' for vm snapshot export\nHint: did you mean --output? (`vm snapshot export --help`)\n",
    });
  });

  it("points at --help when nothing is close", async () => {
    assert.equal(
      (await run(["frobnicate"], dir)).stderr,
      "Error: unknown command 'frobnicate'\nHint: `vm --help` lists the commands\n",
    );
    assert.equal(
      (await run(["status", "--bogus"], dir)).stderr,
      "Error: unknown option '--bogus' for vm status\nHint: `vm status --help` lists its options\n",
    );
  });

  it("refuses exec without a command with exit code 2", async () => {
    const result = await run(["exec"], dir);
    assert.equal(result.code, 2);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      "Error: missing required argument 'command'\nHint: `vm exec --help` shows how to use it\n",
    );
  });

  it("fails status with exit code 3 and 'No vm.yaml' when there is no config", async () => {
    const result = await run(["status"], dir);
    assert.equal(result.code, 3);
    assert.equal(result.stdout, "");
    assert.equal(
      result.stderr,
      `Error: No vm.yaml in ${dir} or any parent folder, and no environment was created here\n` +
        "Hint: Run it in the project's folder, pass --config FILE or --project NAME (`vm list --all` shows the projects), or run `vm create` to start one here\n",
    );
  });

  it("fails status --json with exit code 3 when there is no config", async () => {
    const result = await run(["status", "--json"], dir);
    assert.equal(result.code, 3);
    assert.match(result.stderr, /^Error: No vm\.yaml in /);
  });

  it("reports a --config file that does not exist as CONFIG_NOT_FOUND with exit code 3", async () => {
    const missing = join(dir, "nope.yaml");
    const result = await run(["status", "--config", missing], dir);
    assert.equal(result.code, 3);
    assert.ok(result.stderr.startsWith(`Error: Config file ${missing} does not exist\n`), result.stderr);
  });

  it("prints vm.yaml's warnings once on stderr, before what the command says", async () => {
    const project = join(dir, "warned");
    mkdirSync(project);
    writeFileSync(
      join(project, "vm.yaml"),
      "vm:\n  box: ./Dockerfile\naliases:\n  ll: ls -la\nvm.box: @vibe\n",
    );
    const result = await run(["status"], project);
    assert.equal(result.code, 6);
    assert.ok(
      result.stderr.startsWith(
        "Warning: vm.yaml sets vm.box twice: line 2 (./Dockerfile) and line 5 (@vibe); the later one, line 5, is used\n" +
          "Warning: vm.yaml has fields from vm 3.x that vm does not use; they are ignored:\n" +
          "  line 3: aliases (define aliases in the box image's shell profile)\n" +
          "Error: Cannot reach the Docker engine",
      ),
      result.stderr,
    );
  });

  it("adds the error code with VM_DEBUG=1", async () => {
    const result = await run(["status"], dir, { VM_DEBUG: "1" });
    assert.equal(result.code, 3);
    assert.match(result.stderr, /\n\(code CONFIG_NOT_FOUND\)\n/);
  });
});
