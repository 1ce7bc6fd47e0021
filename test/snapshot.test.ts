import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { parse as parseYaml } from "yaml";
import { availableEngines, docker, dockerTry, type TestEngine } from "./helpers/engines.ts";
import { ensureBusybox, ensureToolsImage } from "./helpers/fixtures.ts";
import {
  cleanupRun,
  makeProject,
  removeStepImages,
  RUN_ID,
  runVm,
  TEST_LABEL,
  uniqueName,
  type VmResult,
} from "./helpers/vm.ts";

// Other test files run at the same time against the same engines: look only at what this file made.
const runLabel = `label=${TEST_LABEL}=${RUN_ID}`;

interface ListRow {
  name: string;
  type: string;
  project: string | null;
  size_bytes: number;
  platform: string;
  description: string;
  image_id: string;
  image_tag: string;
}

for (const engine of availableEngines()) {
  describe(`snapshots on one machine, ${engine.name} (${engine.imageStore} image store)`, () => {
    const home = mkdtempSync(join(tmpdir(), "vm-home-"));
    const env = { XDG_CONFIG_HOME: home };
    const projects: { cleanup: () => void }[] = [];
    const project = (files: Record<string, string>) => {
      const p = makeProject(files);
      projects.push(p);
      return p;
    };
    const vm = (args: string[], cwd: string, extra: Record<string, string> = {}): Promise<VmResult> =>
      runVm(args, { cwd, engine, env: { ...env, ...extra } });
    const base = uniqueName("base");
    const builderName = uniqueName("builder");
    let builder: { dir: string };

    before(() => {
      const image = ensureBusybox(engine);
      builder = project({
        Dockerfile: `FROM ${image}\nRUN echo from-the-dockerfile > /etc/built-in\n`,
        "vm.yaml": `project:\n  name: ${builderName}\nvm:\n  box: ./Dockerfile\nenvironment:\n  API_TOKEN: do-not-leak\n`,
      });
    });
    after(() => {
      cleanupRun(engine);
      for (const p of projects) p.cleanup();
      rmSync(home, { recursive: true, force: true });
    });

    it("commits a running environment with --quiesce, and a second project boots from @name with its own mount", async () => {
      assert.equal((await vm(["create"], builder.dir)).code, 0);
      await vm(["exec", "--", "sh", "-c", "echo installed-by-hand > /opt-tool.txt"], builder.dir);
      const created = await vm(
        ["snapshot", "create", `@${base}`, "--quiesce", "--description", "Base: busybox + a file"],
        builder.dir,
      );
      assert.equal(created.code, 0, created.stderr);
      assert.match(created.stdout, new RegExp(`Created snapshot @${base}`));
      assert.match(created.stdout, new RegExp(`vm.box: "@${base}"`));
      assert.equal(
        docker(engine, ["inspect", "--format", "{{.State.Status}} {{.State.Paused}}", `${builderName}-dev`]),
        "running false",
      );
      assert.equal((await vm(["destroy", "--force"], builder.dir)).code, 0);

      const user = project({
        "vm.yaml": `project:\n  name: ${uniqueName("user")}\nvm:\n  box: @${base}\n`,
        "own.txt": "mine\n",
      });
      const create = await vm(["create"], user.dir);
      assert.equal(create.code, 0, create.stderr);
      assert.doesNotMatch(create.stderr, /Step \d/, "a snapshot box is used as it is, without a build");
      const seen = await vm(["exec", "--", "cat", "/opt-tool.txt", "/etc/built-in", "own.txt"], user.dir);
      assert.equal(seen.stdout, "installed-by-hand\nfrom-the-dockerfile\nmine\n");
      assert.equal((await vm(["destroy", "--force"], user.dir)).code, 0);
    });

    it("keeps vm.yaml's environment and vm's keep-alive settings out of the snapshot image", () => {
      const config = JSON.parse(
        docker(engine, ["image", "inspect", "--format", "{{json .Config}}", `vm-snapshot/global:${base}`]),
      ) as {
        Env: string[] | null;
        WorkingDir: string;
        Labels: Record<string, string>;
      };
      assert.ok(
        !(config.Env ?? []).some((e) => e.includes("do-not-leak")),
        `Env: ${JSON.stringify(config.Env)}`,
      );
      assert.notEqual(config.WorkingDir, "/workspace");
      assert.equal(config.Labels["dev.vm.role"], "snapshot");
      assert.equal(config.Labels["dev.vm.snapshot"], `global/${base}`);
    });

    it("records the config digest, platform, size and source in metadata.json", () => {
      const meta = JSON.parse(
        readFileSync(join(home, "vm", "snapshots", "global", base, "metadata.json"), "utf8"),
      ) as {
        image_id: string;
        engine_image_id: string;
        platform: { os: string; architecture: string };
        source: string;
        size_bytes: number;
        scope: string;
      };
      assert.equal(meta.source, "committed");
      assert.equal(meta.scope, "global");
      assert.deepEqual(meta.platform.os, "linux");
      assert.match(meta.image_id, /^sha256:[0-9a-f]{64}$/);
      assert.ok(meta.size_bytes > 0);
      // The config digest is what survives docker save/load; check it against the engine's own save.
      const saved = saveConfigDigest(engine, `vm-snapshot/global:${base}`);
      assert.equal(meta.image_id, saved);
    });

    it("lists snapshots as a table, JSON and YAML, with filters", async () => {
      const projectSnap = project({
        "vm.yaml": `project:\n  name: ${uniqueName("lister")}\nvm:\n  box: @${base}\n`,
      });
      assert.equal((await vm(["create"], projectSnap.dir)).code, 0);
      const local = await vm(["snapshot", "create", "local-one", "-d", "project scoped"], projectSnap.dir);
      assert.equal(local.code, 0, local.stderr);

      const table = await vm(["snapshot", "list"], tmpdir());
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^NAME\s+TYPE\s+CREATED\s+SIZE\s+PLATFORM\s+DESCRIPTION\n/);
      assert.match(
        table.stdout,
        new RegExp(
          `@${base}\\s+base\\s+\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d\\s+[\\d.]+ [KM]?B\\s+linux/amd64\\s+Base: busybox \\+ a file`,
        ),
      );
      assert.match(table.stdout, /local-one\s+project \(/);

      const json = JSON.parse(
        (await vm(["snapshot", "list", "--format", "json"], tmpdir())).stdout,
      ) as ListRow[];
      assert.deepEqual(json.map((r) => r.name).sort(), [base, "local-one"].sort());
      const row = json.find((r) => r.name === base)!;
      assert.deepEqual(Object.keys(row).sort(), [
        "created_at",
        "description",
        "image_id",
        "image_tag",
        "imported_from",
        "languages",
        "name",
        "platform",
        "project",
        "size_bytes",
        "source",
        "tools",
        "type",
      ]);
      assert.equal(row.type, "base");

      const yaml = parseYaml(
        (await vm(["snapshot", "list", "--format", "yaml"], tmpdir())).stdout,
      ) as ListRow[];
      assert.deepEqual(yaml, json);

      const filtered = JSON.parse(
        (await vm(["snapshot", "list", "--format", "json", "--filter", "local-*"], tmpdir())).stdout,
      ) as ListRow[];
      assert.deepEqual(
        filtered.map((r) => r.name),
        ["local-one"],
      );
      const bases = JSON.parse(
        (await vm(["snapshot", "list", "--format", "json", "--type", "base"], tmpdir())).stdout,
      ) as ListRow[];
      assert.deepEqual(
        bases.map((r) => r.name),
        [base],
      );
      const digest = await vm(["snapshot", "list", "--show-digest", "--type", "project"], tmpdir());
      assert.match(digest.stdout, /DIGEST\n.*sha256:[0-9a-f]{64}\n$/);
      assert.equal((await vm(["snapshot", "list", "--format", "xml"], tmpdir())).code, 2);

      const inspect = await vm(["snapshot", "inspect", "local-one"], projectSnap.dir);
      assert.match(inspect.stdout, /Description: project scoped/);
      assert.equal((await vm(["destroy", "-f"], projectSnap.dir)).code, 0);
    });

    it("restores a project's environment from its snapshot, keeping the project mount", async () => {
      const name = uniqueName("restore");
      const p = project({
        "vm.yaml": `project:\n  name: ${name}\nvm:\n  box: @${base}\n`,
        "keep.txt": "project file\n",
      });
      assert.equal((await vm(["create"], p.dir)).code, 0);
      await vm(["exec", "--", "sh", "-c", "echo state-1 > /state"], p.dir);
      assert.equal((await vm(["snapshot", "create", "checkpoint"], p.dir)).code, 0);
      await vm(["exec", "--", "sh", "-c", "echo state-2 > /state"], p.dir);
      const refused = await vm(["snapshot", "restore", "checkpoint"], p.dir);
      assert.equal(refused.code, 5, "an existing environment is only replaced with --force");
      const restored = await vm(["snapshot", "restore", "checkpoint", "--force"], p.dir);
      assert.equal(restored.code, 0, restored.stderr);
      assert.equal(
        (await vm(["exec", "--", "cat", "/state", "keep.txt"], p.dir)).stdout,
        "state-1\nproject file\n",
      );
      assert.equal((await vm(["destroy", "-f"], p.dir)).code, 0);
    });

    it("refuses to overwrite without --force, and --force replaces it and removes the old image", async () => {
      const p = project({ "vm.yaml": `project:\n  name: ${uniqueName("over")}\nvm:\n  box: @${base}\n` });
      assert.equal((await vm(["create"], p.dir)).code, 0);
      const name = uniqueName("twice");
      assert.equal((await vm(["snapshot", "create", `@${name}`], p.dir)).code, 0);
      const firstId = docker(engine, [
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        `vm-snapshot/global:${name}`,
      ]);
      const again = await vm(["snapshot", "create", `@${name}`], p.dir);
      assert.equal(again.code, 5);
      assert.match(again.stderr, new RegExp(`Snapshot '@${name}' already exists`));
      assert.match(again.stderr, /--force/);
      await vm(["exec", "--", "sh", "-c", "echo changed > /changed"], p.dir);
      const forced = await vm(["snapshot", "create", `@${name}`, "--force"], p.dir);
      assert.equal(forced.code, 0, forced.stderr);
      const secondId = docker(engine, [
        "image",
        "inspect",
        "--format",
        "{{.Id}}",
        `vm-snapshot/global:${name}`,
      ]);
      assert.notEqual(secondId, firstId);
      assert.notEqual(
        dockerTry(engine, ["image", "inspect", firstId]).status,
        0,
        "the replaced image is removed",
      );
      assert.equal((await vm(["destroy", "-f"], p.dir)).code, 0);
      assert.equal((await vm(["snapshot", "delete", `@${name}`], p.dir)).code, 0);
    });

    it("a commit that fails under --quiesce leaves the environment running and unpaused, and no snapshot", async () => {
      const name = uniqueName("q");
      const p = project({ "vm.yaml": `project:\n  name: ${name}\nvm:\n  box: @${base}\n` });
      assert.equal((await vm(["create"], p.dir)).code, 0);
      const res = await vm(["snapshot", "create", "broken", "--quiesce"], p.dir, {
        VM_TEST_FAULTS: "commit",
      });
      assert.equal(res.code, 1);
      assert.match(res.stderr, /Failure injected at 'commit'/);
      assert.equal(
        docker(engine, ["inspect", "--format", "{{.State.Status}} {{.State.Paused}}", `${name}-dev`]),
        "running false",
      );
      assert.equal((await vm(["exec", "--", "true"], p.dir)).code, 0);
      assert.equal(existsSync(join(home, "vm", "snapshots", name, "broken")), false);
      assert.equal(docker(engine, ["images", "-q", "--filter", runLabel, "vm-snapshot/staging"]), "");
      assert.equal((await vm(["destroy", "-f"], p.dir)).code, 0);
    });

    it("a failure after the commit leaves no snapshot and no staged image", async () => {
      const name = uniqueName("late");
      const p = project({ "vm.yaml": `project:\n  name: ${name}\nvm:\n  box: @${base}\n` });
      assert.equal((await vm(["create"], p.dir)).code, 0);
      const res = await vm(["snapshot", "create", "late"], p.dir, { VM_TEST_FAULTS: "register" });
      assert.equal(res.code, 1);
      assert.equal(existsSync(join(home, "vm", "snapshots", name, "late")), false);
      assert.equal(docker(engine, ["images", "-q", "--filter", runLabel, "vm-snapshot/staging"]), "");
      assert.equal((await vm(["destroy", "-f"], p.dir)).code, 0);
    });

    it("--from-dockerfile builds and saves a base snapshot with its Dockerfile's sha256 and leaves no container", async () => {
      const image = ensureBusybox(engine);
      const dockerfile = `FROM ${image}\nARG FLAVOUR=plain\nRUN echo "$FLAVOUR" > /flavour\n`;
      const p = project({ "Dockerfile.base": dockerfile });
      const name = uniqueName("built");
      const containersBefore = docker(engine, ["ps", "-aq", "--filter", runLabel]);
      const res = await vm(
        [
          "create",
          "--save-as",
          `@${name}`,
          "--from-dockerfile",
          "Dockerfile.base",
          "--build-arg",
          "FLAVOUR=spicy",
        ],
        p.dir,
      );
      assert.equal(res.code, 0, res.stderr);
      assert.equal(docker(engine, ["ps", "-aq", "--filter", runLabel]), containersBefore);
      const meta = JSON.parse((await vm(["snapshot", "inspect", `@${name}`, "--json"], p.dir)).stdout) as {
        source: string;
        build: {
          dockerfile_sha256: string;
          build_args: Record<string, string | null>;
          build_args_note?: string;
        };
      };
      assert.equal(meta.source, "built");
      assert.equal(meta.build.dockerfile_sha256, createHash("sha256").update(dockerfile).digest("hex"));
      // By name only: a build arg's value is often a token, and the metadata goes into every export.
      assert.deepEqual(meta.build.build_args, { FLAVOUR: null });
      assert.match(meta.build.build_args_note ?? "", /not recorded.*--record-build-args/);
      const user = project({ "vm.yaml": `project:\n  name: ${uniqueName("u")}\nvm:\n  box: "@${name}"\n` });
      assert.equal((await vm(["create"], user.dir)).code, 0);
      assert.equal((await vm(["exec", "--", "cat", "/flavour"], user.dir)).stdout, "spicy\n");
      assert.equal((await vm(["destroy", "-f"], user.dir)).code, 0);

      const viaSnapshot = await vm(
        [
          "snapshot",
          "create",
          `@${name}-2`,
          "--from-dockerfile",
          "Dockerfile.base",
          "--build-arg",
          "FLAVOUR=mild",
          "--record-build-args",
        ],
        p.dir,
      );
      assert.equal(viaSnapshot.code, 0, viaSnapshot.stderr);
      const recorded = JSON.parse(
        (await vm(["snapshot", "inspect", `@${name}-2`, "--json"], p.dir)).stdout,
      ) as {
        build: { build_args: Record<string, string | null>; build_args_note?: string };
      };
      assert.deepEqual(recorded.build.build_args, { FLAVOUR: "mild" });
      assert.equal(recorded.build.build_args_note, undefined);
    });

    it("--from-dockerfile with a failing build leaves no container, snapshot, tag or staged image", async () => {
      const image = ensureBusybox(engine);
      const name = uniqueName("nobuild");
      const p = project({ Dockerfile: `FROM ${image}\nRUN echo step-one-${name}\nRUN exit 9\n` });
      const containersBefore = docker(engine, ["ps", "-aq", "--filter", runLabel]);
      const res = await vm(["snapshot", "create", `@${name}`, "--from-dockerfile", "Dockerfile"], p.dir);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /Error: Build of .* failed at Step 3\/\d+ : RUN exit 9/);
      assert.equal(docker(engine, ["ps", "-aq", "--filter", runLabel]), containersBefore);
      assert.equal(existsSync(join(home, "vm", "snapshots", "global", name)), false);
      assert.equal(docker(engine, ["images", "-q", "--filter", `label=dev.vm.snapshot=global/${name}`]), "");
      assert.equal(docker(engine, ["images", "-q", "--filter", runLabel, "vm-snapshot/staging"]), "");
      assert.equal((await vm(["snapshot", "inspect", `@${name}`], p.dir)).code, 4);
      // The step that succeeded stays as build cache (as with docker build): this test's own, removed here.
      removeStepImages(engine, name);
    });

    it("detects languages, tools and OS packages by running the image briefly", async () => {
      const tools = ensureToolsImage(engine);
      const p = project({ "vm.yaml": `project:\n  name: ${uniqueName("tools")}\nvm:\n  box: ${tools}\n` });
      assert.equal((await vm(["create"], p.dir)).code, 0);
      const name = uniqueName("inv");
      assert.equal((await vm(["snapshot", "create", `@${name}`], p.dir)).code, 0);
      const meta = JSON.parse((await vm(["snapshot", "inspect", `@${name}`, "--json"], p.dir)).stdout) as {
        languages: Record<string, string>;
        tools: { name: string; version: string; source: string }[];
        os_packages: { manager: string; count: number; packages: string[] };
      };
      assert.deepEqual(meta.languages, { node: "22.11.0", python: "3.13.0", go: "1.22.1" });
      assert.deepEqual(
        meta.tools.map((t) => `${t.source}:${t.name}@${t.version}`),
        ["npm:@anthropic-ai/claude-code@1.0.0", "cargo:cargo-watch@"],
      );
      assert.deepEqual(meta.os_packages, {
        manager: "dpkg",
        count: 2,
        packages: ["bash=5.2.15-2", "curl=7.88.1-10"],
      });
      const text = await vm(["snapshot", "inspect", `@${name}`], p.dir);
      assert.match(text.stdout, /Languages: +node 22\.11\.0, python 3\.13\.0, go 1\.22\.1/);
      // The probe is a snapshot-role container with an owner label (host/pid of the vm that ran it).
      assert.equal(
        docker(engine, [
          "ps",
          "-aq",
          "--filter",
          "label=dev.vm.owner",
          "--filter",
          "label=dev.vm.role=snapshot",
          "--filter",
          runLabel,
        ]),
        "",
        "the probe container is gone",
      );
      assert.equal((await vm(["destroy", "-f"], p.dir)).code, 0);
    });

    it("says exactly what happened when the metadata is there but the engine lost the image", async () => {
      const p = project({ "vm.yaml": `project:\n  name: ${uniqueName("lost")}\nvm:\n  box: @${base}\n` });
      assert.equal((await vm(["create"], p.dir)).code, 0);
      const name = uniqueName("lost");
      assert.equal((await vm(["snapshot", "create", `@${name}`], p.dir)).code, 0);
      assert.equal((await vm(["destroy", "-f"], p.dir)).code, 0);
      docker(engine, ["rmi", "-f", `vm-snapshot/global:${name}`]);
      const user = project({
        "vm.yaml": `project:\n  name: ${uniqueName("lost-user")}\nvm:\n  box: @${name}\n`,
      });
      const res = await vm(["create"], user.dir);
      assert.equal(res.code, 4);
      assert.match(
        res.stderr,
        new RegExp(
          `Snapshot @${name} is registered, but the engine no longer has its image vm-snapshot/global:${name}`,
        ),
      );
      assert.match(res.stderr, /vm snapshot import <file> --force/);
    });

    it("delete refuses while an environment uses the snapshot, then removes metadata and image", async () => {
      const name = uniqueName("del");
      const p = project({ "vm.yaml": `project:\n  name: ${uniqueName("maker")}\nvm:\n  box: @${base}\n` });
      assert.equal((await vm(["create"], p.dir)).code, 0);
      assert.equal((await vm(["snapshot", "create", `@${name}`], p.dir)).code, 0);
      const userName = uniqueName("deluser");
      const user = project({ "vm.yaml": `project:\n  name: ${userName}\nvm:\n  box: @${name}\n` });
      assert.equal((await vm(["create"], user.dir)).code, 0);
      const refused = await vm(["snapshot", "delete", `@${name}`], tmpdir());
      assert.equal(refused.code, 5);
      assert.match(refused.stderr, new RegExp(`used by container ${userName}-dev`));
      assert.equal((await vm(["destroy", "-f"], user.dir)).code, 0);
      const deleted = await vm(["snapshot", "delete", `@${name}`], tmpdir());
      assert.equal(deleted.code, 0, deleted.stderr);
      assert.equal(existsSync(join(home, "vm", "snapshots", "global", name)), false);
      assert.notEqual(dockerTry(engine, ["image", "inspect", `vm-snapshot/global:${name}`]).status, 0);
      assert.equal((await vm(["snapshot", "delete", `@${name}`], tmpdir())).code, 4);
      assert.equal((await vm(["destroy", "-f"], p.dir)).code, 0);
    });

    it("refuses snapshot names that are not one safe path component", async () => {
      for (const bad of ["../escape", "Upper", ".hidden", "a/b", "x".repeat(129)]) {
        const res = await vm(
          ["snapshot", "create", `@${bad}`, "--from-dockerfile", "Dockerfile"],
          builder.dir,
        );
        assert.equal(res.code, 2, `${bad}: ${res.stderr}`);
        assert.match(res.stderr, /is not a valid snapshot name/);
      }
      assert.equal(existsSync(join(home, "vm", "snapshots", "escape")), false);
    });
  });
}

/** The sha256 of the config inside `docker save`: the identity that survives save/load. */
function saveConfigDigest(engine: TestEngine, ref: string): string {
  const dir = mkdtempSync(join(tmpdir(), "vm-save-"));
  try {
    const file = join(dir, "image.tar");
    docker(engine, ["image", "save", "-o", file, ref]);
    const manifest = JSON.parse(
      execFileSync("tar", ["-xOf", file, "manifest.json"], { encoding: "utf8" }),
    ) as { Config: string }[];
    const config = execFileSync("tar", ["-xOf", file, manifest[0]!.Config]);
    return `sha256:${createHash("sha256").update(config).digest("hex")}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
