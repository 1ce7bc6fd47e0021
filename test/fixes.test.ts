import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { availableEngines, docker, dockerTry } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import { cleanupRun, runVm, uniqueName, VM_BIN, vmEnv } from "./helpers/vm.ts";

/**
 * Issue 10's list of things seen broken on the earlier main, one test each: which project a command
 * means, hints that lead somewhere, commands that need no project, standard input and closed pipes,
 * URLs, settings.yaml, destroy and the box image, and the messages that say what was checked.
 */
const engine = availableEngines()[0]!;
const dir = mkdtempSync(join(tmpdir(), "vm-fixes-"));
const home = join(dir, "home");
const env = { XDG_CONFIG_HOME: home, XDG_CACHE_HOME: join(dir, "cache") };
const vm = (args: string[], cwd = dir, extra: Record<string, string> = {}, input?: string) =>
  runVm(args, { cwd, engine, env: { ...env, ...extra }, ...(input !== undefined ? { input } : {}) });
const base = uniqueName("fix");
let exported = "";

/** A folder with a Dockerfile FROM the busybox fixture (and whatever else is given). */
function folder(name: string, files: Record<string, string> = {}): string {
  const path = join(dir, name);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, "Dockerfile"), `FROM ${ensureBusybox(engine)}\nRUN echo ${name} > /marker\n`);
  for (const [file, content] of Object.entries(files)) writeFileSync(join(path, file), content);
  return path;
}

/** Runs a shell pipeline with bin/vm as `vm`; resolves with each stage's exit status and stderr. */
function pipeline(script: string): Promise<{ status: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", `${script}; echo "\${PIPESTATUS[*]}"`], {
      cwd: dir,
      env: vmEnv(engine, { VM: VM_BIN, ...env }),
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", () => resolve({ status: stdout.trim().split("\n").pop() ?? "", stderr }));
  });
}

before(async () => {
  const made = await vm([
    "snapshot",
    "create",
    `@${base}`,
    "--from-dockerfile",
    join(folder("base"), "Dockerfile"),
  ]);
  assert.equal(made.code, 0, made.stderr);
  exported = join(dir, "base.snapshot.tar.gz");
  assert.equal((await vm(["snapshot", "export", `@${base}`, "-o", exported])).code, 0);
});

after(() => {
  cleanupRun(engine);
  rmSync(dir, { recursive: true, force: true });
});

describe("which project a command means", () => {
  it("a folder with no vm.yaml whose environment was made with --config: every project command finds it", async () => {
    const project = uniqueName("cfg");
    const here = folder("by-config", {
      "vm-base.yaml": `project:\n  name: ${project}\nvm:\n  box: ./Dockerfile\n`,
    });
    assert.equal((await vm(["create", "--config", "vm-base.yaml"], here)).code, 0);
    const status = await vm(["status"], here);
    assert.equal(status.code, 0, status.stderr);
    assert.match(
      status.stderr,
      new RegExp(
        `^Using project '${project}': its environment ${project}-dev was created here from vm-base\\.yaml\\n$`,
      ),
    );
    assert.equal((await vm(["exec", "--", "cat", "/marker"], here)).stdout, "by-config\n");
    const snap = await vm(["snapshot", "create", "saved", "--quiesce"], here);
    assert.equal(snap.code, 0, snap.stderr);
    assert.match(snap.stdout, new RegExp(`Created snapshot saved \\(project ${project}\\)`));
    // From anywhere else, a plain name finds the one project snapshot of that name.
    const out = join(dir, "saved.snapshot.tar.gz");
    const exportedElsewhere = await vm(["snapshot", "export", "saved", "--output", out], dir);
    assert.equal(exportedElsewhere.code, 0, exportedElsewhere.stderr);
    assert.match(exportedElsewhere.stderr, new RegExp(`Using snapshot 'saved' of project '${project}'`));
    // --project works from anywhere too.
    assert.equal((await vm(["status", "--project", project], dir)).code, 0);
    // destroy keeps the box image only while the snapshot needs it, says so, and the delete removes it.
    const boxId = docker(engine, ["image", "inspect", "-f", "{{.Id}}", `vm-box/${project}:latest`]);
    const destroyed = await vm(["destroy", "--force"], here);
    assert.equal(destroyed.code, 0, destroyed.stderr);
    assert.match(
      destroyed.stdout,
      new RegExp(
        `Kept image vm-box/${project}:latest \\(untagged\\): snapshot saved of this project is built on it, and it goes with it: vm snapshot delete saved --project ${project}`,
      ),
    );
    assert.notEqual(
      dockerTry(engine, ["image", "inspect", `vm-box/${project}:latest`]).status,
      0,
      "untagged",
    );
    const deleted = await vm(["snapshot", "delete", "saved", "--project", project], dir);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.notEqual(
      dockerTry(engine, ["image", "inspect", boxId]).status,
      0,
      "the box image went with the snapshot",
    );
  });

  it("several environments made from one folder: refused, listing the --project and --config that pick each", async () => {
    const [p1, p2] = [uniqueName("one"), uniqueName("two")];
    const here = folder("two-configs", {
      "a.yaml": `project:\n  name: ${p1}\nvm:\n  box: ./Dockerfile\n`,
      "b.yaml": `project:\n  name: ${p2}\nvm:\n  box: ./Dockerfile\n`,
    });
    for (const file of ["a.yaml", "b.yaml"])
      assert.equal((await vm(["create", "--config", file], here)).code, 0);
    const res = await vm(["status"], here);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /^Error: Several environments were created from this folder/);
    assert.match(
      res.stderr,
      new RegExp(`${p1} \\(${p1}-dev, from a\\.yaml\\): --project ${p1}  or  --config a\\.yaml`),
    );
    assert.match(
      res.stderr,
      new RegExp(`${p2} \\(${p2}-dev, from b\\.yaml\\): --project ${p2}  or  --config b\\.yaml`),
    );
    for (const file of ["a.yaml", "b.yaml"])
      assert.equal((await vm(["destroy", "--force", "--config", file], here)).code, 0);
  });

  it("no project here: the hint's command works as printed", async () => {
    const here = folder("lonely");
    const res = await vm(["snapshot", "create", `${base}-l`, "--from-dockerfile", "Dockerfile"], here);
    assert.equal(res.code, 2);
    const hint = /Hint: Build it as a global snapshot instead: (vm snapshot create .*)\n/.exec(
      res.stderr,
    )?.[1];
    assert.ok(hint, res.stderr);
    const followed = await vm(hint.split(" ").slice(1), here);
    assert.equal(followed.code, 0, followed.stderr);
    assert.equal((await vm(["snapshot", "delete", `@${base}-l`], here)).code, 0);
  });

  it("commands that need no project do not read an unrelated, invalid vm.yaml", async () => {
    const here = folder("broken-config", { "vm.yaml": "vm:\n  box: [unclosed\n" });
    const out = join(dir, "from-broken.snapshot.tar.gz");
    const res = await vm(["snapshot", "export", `@${base}`, "-o", out], here);
    assert.equal(res.code, 0, res.stderr);
    for (const args of [
      ["snapshot", "list"],
      ["snapshot", "inspect", `@${base}`],
      ["snapshot", "verify", out],
      ["list"],
    ])
      assert.equal((await vm(args, here)).code, 0, args.join(" "));
  });
});

describe("engines, streams and files", () => {
  it("an ssh:// DOCKER_HOST gives the same clear error on every command", async () => {
    for (const args of [
      ["list"],
      ["status"],
      ["snapshot", "export", `@${base}`, "-o", join(dir, "x.tar.gz")],
    ]) {
      const res = await vm(args, dir, { DOCKER_HOST: "ssh://someone@example" });
      assert.equal(res.code, 6, `${args.join(" ")}: ${res.stderr}`);
      assert.match(
        res.stderr,
        /^Error: DOCKER_HOST 'ssh:\/\/someone@example' cannot be used: vm does not speak ssh:\/\/ to engines yet\nHint: Forward the remote engine's socket/,
      );
      assert.doesNotMatch(res.stderr, /internal error|is not a function/);
    }
  });

  it("vm snapshot verify - and inspect - read standard input", async () => {
    const verified = await pipeline(`"$VM" snapshot verify - < ${exported}`);
    assert.equal(verified.status, "0", verified.stderr);
    const inspected = await pipeline(`"$VM" snapshot inspect - < ${exported} | head -1`);
    assert.equal(inspected.status, "0 0", inspected.stderr);
  });

  it("an export into a pipe closed early ends with 141 and one line: no stack trace, no spool file left", async () => {
    const cut = await pipeline(`"$VM" snapshot export @${base} -o - | head -c 100 > /dev/null`);
    assert.equal(cut.status, "141 0", cut.stderr);
    assert.match(cut.stderr, /^Error: Standard output was closed before the export finished; stopped\n$/m);
    assert.doesNotMatch(cut.stderr, /EPIPE|at .*\.(ts|js|mjs):\d+/);
    // An import that refuses (the name exists here) stops reading: the export says one line, the import why.
    const refused = await pipeline(`"$VM" snapshot export @${base} -o - | "$VM" snapshot import -`);
    assert.match(refused.status, /^(141|0) 5$/, refused.stderr);
    assert.match(refused.stderr, new RegExp(`Error: Snapshot '${base}' already exists`));
    assert.doesNotMatch(refused.stderr, /EPIPE|node:events|at .*\.(ts|js|mjs):\d+/);
    const cache = join(dir, "cache", "vm");
    assert.deepEqual(
      existsSync(cache) ? readdirSync(cache).filter((f) => f.startsWith(".vm-spool")) : [],
      [],
    );
  });

  it("any command's output into a pipe its reader has closed ends with 141 and nothing on stderr", async () => {
    // The read end is closed before vm has even started, so its first write fails (EPIPE) every time.
    const closedPipe = (args: string[]) =>
      new Promise<{ code: number | null; stderr: string }>((resolve, reject) => {
        const child = spawn(VM_BIN, args, {
          cwd: dir,
          env: { ...process.env, ...env, DOCKER_HOST: engine.host },
          stdio: ["ignore", "pipe", "pipe"],
        });
        child.stdout.destroy();
        let stderr = "";
        child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        child.on("error", reject);
        child.on("close", (code) => resolve({ code, stderr }));
      });
    for (const args of [
      ["--help"],
      ["snapshot", "list", "--help"],
      ["snapshot", "list"],
      ["list", "--all"],
    ]) {
      const res = await closedPipe(args);
      assert.deepEqual(res, { code: 141, stderr: "" }, `vm ${args.join(" ")}`);
    }
    // A command that fails on its own keeps its status and its message.
    const failed = await closedPipe(["snapshot", "inspect", "@no-such-snapshot-here"]);
    assert.notEqual(failed.code, 141);
    assert.match(failed.stderr, /^Error: /);
  });

  it("--output gs://... (a scheme vm does not write) is refused naming the scheme, and writes nothing", async () => {
    const res = await vm([
      "snapshot",
      "export",
      `@${base}`,
      "--output",
      "gs://company-vms/x.snapshot.tar.gz",
    ]);
    assert.equal(res.code, 2);
    assert.match(
      res.stderr,
      /^Error: --output gs:\/\/company-vms\/x\.snapshot\.tar\.gz: vm cannot write to gs:\/\/ locations yet\nHint: Export to a local file and copy it/,
    );
    assert.equal(existsSync(join(dir, "gs:")), false);
    // s3:// and https:// are read; a scheme vm does not speak is refused by name.
    const imported = await vm(["snapshot", "import", "gs://company-vms/x.snapshot.tar.gz"]);
    assert.equal(imported.code, 2);
    assert.match(imported.stderr, /vm cannot read snapshot files from gs:\/\/ locations yet/);
  });

  it("import --force --verify says the whole file was verified, not only its head", async () => {
    const res = await vm(["snapshot", "import", exported, "--name", base, "--force", "--verify"]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, /the whole file was verified first; the engine already had this image/);
    assert.doesNotMatch(res.stdout, /only the file's head/);
  });

  it("settings.yaml that cannot be read as written stops the import (exit 3, the line), never turns the requirement off", async () => {
    mkdirSync(join(home, "vm"), { recursive: true });
    const settings = join(home, "vm", "settings.yaml");
    for (const [text, message] of [
      ["require_signature: [true\n", /settings\.yaml is not valid YAML:\n +line \d+, column \d+/],
      ["require_signature: yes\n", /line 1, require_signature: expected true or false \(got "yes"\)/],
      [
        "require_signatures: true\n",
        /line 1, require_signatures: unknown field \(did you mean require_signature\?\)/,
      ],
    ] as const) {
      writeFileSync(settings, text);
      const res = await vm(["snapshot", "import", exported, "--name", `${base}-s`]);
      assert.equal(res.code, 3, `${text}: ${res.stdout}${res.stderr}`);
      assert.match(res.stderr, message);
      assert.equal(existsSync(join(home, "vm", "snapshots", "global", `${base}-s`)), false);
    }
    writeFileSync(settings, "require_signature: true\n");
    const required = await vm(["snapshot", "import", exported, "--name", `${base}-s`]);
    assert.equal(required.code, 7, required.stderr);
    rmSync(settings);
  });
});
