import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { availableEngines, docker, dockerTry } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import { cleanupRun, makeProject, removeStepImages, runVm, uniqueName } from "./helpers/vm.ts";

for (const engine of availableEngines()) {
  describe(`environment lifecycle on ${engine.name} (${engine.imageStore} image store)`, () => {
    const name = uniqueName("life");
    let project: ReturnType<typeof makeProject>;
    /** The box image and the untagged images of its build steps, recorded once it is built. */
    let boxChain: string[] = [];
    const vm = (args: string[], input?: string) =>
      runVm(args, { cwd: project.dir, engine, ...(input !== undefined ? { input } : {}) });

    before(() => {
      const base = ensureBusybox(engine);
      project = makeProject({
        // The default names the run, so the build's steps are this test's own, shared with no cached build.
        "Dockerfile.dev": `FROM ${base}\nARG GREETING=default-${name}\nRUN echo "built with $GREETING" > /built.txt\n`,
        "vm.yaml": [
          "version: 1",
          "provider: docker",
          "project:",
          `  name: ${name}`,
          "vm:",
          "  box:",
          "    dockerfile: ./Dockerfile.dev",
          "    args:",
          "      GREETING: build-arg-value",
          "  memory: 256mb",
          "  cpus: 1",
          "environment:",
          "  APP_MODE: testing",
          "volumes:",
          '  - "cache:/cache"',
          "",
        ].join("\n"),
        "hello.txt": "from the project folder\n",
      });
    });
    after(() => {
      cleanupRun(engine);
      project.cleanup();
    });

    it("creates the environment from a Dockerfile with build args, streaming the build to stderr", async () => {
      const res = await vm(["create"]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, new RegExp(`Created environment ${name}-dev`));
      assert.match(res.stderr, /Step 2\/\d+ : ARG GREETING/);
      const inspect = (id: string, format: string) => docker(engine, ["image", "inspect", "-f", format, id]);
      boxChain = [inspect(`vm-box/${name}:latest`, "{{.Id}}")];
      // Up the parents while untagged: the steps, until the FROM image.
      for (let parent = inspect(boxChain[0]!, "{{.Parent}}"); parent;) {
        const [tags, next = ""] = inspect(parent, "{{len .RepoTags}} {{.Parent}}").split(" ");
        if (tags !== "0") break;
        boxChain.push(parent);
        parent = next;
      }
      assert.ok(boxChain.length >= 3, `the box and its ARG and RUN steps: ${boxChain.join(" ")}`);
    });

    it("vm exec sees the built file and the mounted project file, in the workspace", async () => {
      const built = await vm(["exec", "--", "cat", "/built.txt"]);
      assert.equal(built.code, 0, built.stderr);
      assert.equal(built.stdout, "built with build-arg-value\n");
      const mounted = await vm(["exec", "--", "cat", "hello.txt"]);
      assert.equal(mounted.stdout, "from the project folder\n");
      const pwd = await vm(["exec", "--", "pwd"]);
      assert.equal(pwd.stdout, "/workspace\n");
      const env = await vm(["exec", "--", "sh", "-c", "echo $APP_MODE"]);
      assert.equal(env.stdout, "testing\n");
    });

    it("vm exec keeps stdout and stderr apart and passes the exit code through", async () => {
      const res = await vm(["exec", "--", "sh", "-c", "echo to-out; echo to-err >&2; exit 42"]);
      assert.equal(res.code, 42);
      assert.equal(res.stdout, "to-out\n");
      assert.equal(res.stderr, "to-err\n");
      assert.equal((await vm(["exec", "--", "true"])).code, 0);
      assert.equal((await vm(["exec", "--", "sh", "-c", "exit 3"])).code, 3);
    });

    it("vm exec forwards piped stdin and the command's own flags", async () => {
      const res = await vm(["exec", "--", "wc", "-l"], "one\ntwo\nthree\n");
      assert.equal(res.stdout.trim(), "3");
      const ls = await vm(["exec", "ls", "-a", "/workspace"]);
      assert.equal(ls.code, 0, ls.stderr);
      assert.match(ls.stdout, /hello\.txt/);
    });

    it("files written in the workspace appear in the project folder", async () => {
      await vm(["exec", "--", "sh", "-c", "echo from-inside > written.txt"]);
      const { readFileSync } = await import("node:fs");
      assert.equal(readFileSync(join(project.dir, "written.txt"), "utf8"), "from-inside\n");
    });

    it("sets the memory and CPU limits on the container, as the engine reports them", () => {
      const out = docker(engine, [
        "inspect",
        "--format",
        "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}} {{.HostConfig.Init}}",
        `${name}-dev`,
      ]);
      assert.equal(out, `${256 * 1024 * 1024} 1000000000 true`);
    });

    it("labels the container with its project and config", () => {
      const labels = JSON.parse(
        docker(engine, ["inspect", "--format", "{{json .Config.Labels}}", `${name}-dev`]),
      ) as Record<string, string>;
      assert.equal(labels["dev.vm.project"], name);
      assert.equal(labels["dev.vm.config"], join(project.dir, "vm.yaml"));
      assert.equal(labels["dev.vm.managed"], "true");
    });

    it("vm ssh -c runs a shell command", async () => {
      const res = await vm(["ssh", "-c", "echo $((6 * 7)); pwd"]);
      assert.equal(res.code, 0, res.stderr);
      assert.equal(res.stdout, "42\n/workspace\n");
    });

    it("refuses a second create without --force and names the existing environment", async () => {
      const res = await vm(["create"]);
      assert.equal(res.code, 5);
      assert.match(res.stderr, /already has an environment/);
      assert.match(res.stderr, /vm create --force/);
    });

    it("stop, then status says exited; exec refuses with a hint; start brings it back", async () => {
      const stop = await vm(["stop"]);
      assert.equal(stop.code, 0, stop.stderr);
      assert.equal(docker(engine, ["inspect", "--format", "{{.State.Status}}", `${name}-dev`]), "exited");
      const status = await vm(["status", "--json"]);
      assert.equal((JSON.parse(status.stdout) as { state: string }).state, "exited");
      const exec = await vm(["exec", "--", "true"]);
      assert.notEqual(exec.code, 0);
      assert.match(exec.stderr, /vm start/);
      const start = await vm(["start"]);
      assert.equal(start.code, 0, start.stderr);
      assert.equal((await vm(["exec", "--", "cat", "/built.txt"])).stdout, "built with build-arg-value\n");
    });

    it("status shows the running state, limits and volumes", async () => {
      const res = await vm(["status"]);
      assert.equal(res.code, 0, res.stderr);
      assert.match(res.stdout, /State: +running/);
      assert.match(res.stdout, /Memory: +256 MB/);
      assert.match(res.stdout, new RegExp(`vm-${name}-cache:/cache`));
    });

    it("list shows the environment, in text and JSON", async () => {
      const text = await vm(["list"]);
      assert.match(text.stdout, new RegExp(`${name}\\s+${name}-dev\\s+running`));
      const json = JSON.parse((await vm(["list", "--json"])).stdout) as { project: string; state: string }[];
      assert.ok(json.some((e) => e.project === name && e.state === "running"));
    });

    it("restart keeps the environment and its volume data; create --force keeps named volumes", async () => {
      await vm(["exec", "--", "sh", "-c", "echo kept > /cache/data"]);
      assert.equal((await vm(["restart"])).code, 0);
      assert.equal((await vm(["exec", "--", "cat", "/cache/data"])).stdout, "kept\n");
      const recreate = await vm(["create", "--force"]);
      assert.equal(recreate.code, 0, recreate.stderr);
      assert.equal((await vm(["exec", "--", "cat", "/cache/data"])).stdout, "kept\n");
    });

    it("vm logs shows the environment's output", async () => {
      // The main process (docker-init running sleep) prints nothing, and vm exec output is not logged:
      // write to PID 1's stdout and stderr, the pipes the engine's log driver reads.
      const marker = `marker-${Math.random().toString(36).slice(2, 8)}`;
      const toMain = async (script: string) => {
        const res = await vm(["exec", "--", "sh", "-c", script]);
        assert.equal(res.code, 0, res.stderr);
      };
      // The log driver copies each pipe on its own, asynchronously: wait until a line has been logged.
      const logsOnceHas = async (stream: "stdout" | "stderr", text: string) => {
        let res = await vm(["logs"]);
        for (let i = 0; i < 50 && res.code === 0 && !res[stream].includes(text); i++) {
          await new Promise((r) => setTimeout(r, 100));
          res = await vm(["logs"]);
        }
        assert.equal(res.code, 0, res.stderr);
        assert.ok(res[stream].includes(text), `vm logs never showed ${text} on ${stream}: ${res[stream]}`);
        return res;
      };
      // stderr first and logged before stdout is written, so the order of the log is known.
      await toMain(`echo ${marker}-err > /proc/1/fd/2`);
      await logsOnceHas("stderr", `${marker}-err`);
      await toMain(`echo ${marker}-1 > /proc/1/fd/1; echo ${marker}-2 > /proc/1/fd/1`);
      const res = await logsOnceHas("stdout", `${marker}-2`);
      assert.equal(res.stdout, `${marker}-1\n${marker}-2\n`, "the main process's stdout, in order");
      assert.match(res.stderr, new RegExp(`^${marker}-err$`, "m"), "its stderr, on stderr");
      const tail = await vm(["logs", "--tail", "1"]);
      assert.equal(tail.code, 0, tail.stderr);
      assert.equal(tail.stdout, `${marker}-2\n`, "--tail 1 shows only the last line");
      assert.doesNotMatch(tail.stderr, new RegExp(marker));
    });

    it("destroy leaves no container, box image or volume of the project", async () => {
      const res = await vm(["destroy", "--force"]);
      assert.equal(res.code, 0, res.stderr);
      const filter = `label=dev.vm.project=${name}`;
      assert.equal(docker(engine, ["ps", "-aq", "--filter", filter]), "");
      assert.equal(docker(engine, ["images", "-q", "--filter", filter]), "");
      // Its build steps too: the containerd store keeps each as an image of its own.
      assert.deepEqual(
        boxChain.filter((id) => dockerTry(engine, ["image", "inspect", id]).status === 0),
        [],
      );
      assert.equal(docker(engine, ["volume", "ls", "-q", "--filter", filter]), "");
      const status = await vm(["status"]);
      assert.equal(status.code, 4);
      assert.match(status.stderr, /vm create/);
    });
  });
}

describe("image boxes and config discovery", () => {
  const engine = availableEngines()[0]!;
  after(() => cleanupRun(engine));

  it("creates an environment from an image already in the engine, as vm.user", async () => {
    const image = ensureBusybox(engine);
    const name = uniqueName("img");
    const project = makeProject({
      "vm.yaml": `project:\n  name: ${name}\nvm:\n  box: ${image}\n  user: developer\n`,
    });
    try {
      const create = await runVm(["create"], { cwd: project.dir, engine });
      assert.equal(create.code, 0, create.stderr);
      const id = await runVm(["exec", "--", "id", "-un"], { cwd: project.dir, engine });
      assert.equal(id.stdout, "developer\n");
      assert.equal(docker(engine, ["inspect", "--format", "{{.Config.Image}}", `${name}-dev`]), image);
      // From a subfolder, vm finds the project's vm.yaml in a parent folder.
      mkdirSync(join(project.dir, "sub", "deeper"), { recursive: true });
      const fromSub = await runVm(["exec", "--", "pwd"], { cwd: join(project.dir, "sub", "deeper"), engine });
      assert.equal(fromSub.stdout, "/workspace\n");
      assert.equal((await runVm(["destroy", "--force"], { cwd: project.dir, engine })).code, 0);
    } finally {
      project.cleanup();
    }
  });

  it("--config FILE picks another vm.yaml, before or after the command", async () => {
    const image = ensureBusybox(engine);
    const name = uniqueName("cfg");
    const project = makeProject({ "vm-base.yaml": `project:\n  name: ${name}\nvm:\n  box: ${image}\n` });
    try {
      const create = await runVm(["create", "--config", "vm-base.yaml"], { cwd: project.dir, engine });
      assert.equal(create.code, 0, create.stderr);
      const status = await runVm(["--config", "vm-base.yaml", "status", "--json"], {
        cwd: project.dir,
        engine,
      });
      assert.equal((JSON.parse(status.stdout) as { project: string }).project, name);
      assert.equal(
        (await runVm(["destroy", "-f", "--config", "vm-base.yaml"], { cwd: project.dir, engine })).code,
        0,
      );
    } finally {
      project.cleanup();
    }
  });

  it("vm create in a folder without vm.yaml writes a starter that names the folder's Dockerfile", async () => {
    const image = ensureBusybox(engine);
    const project = makeProject({ Dockerfile: `FROM ${image}\n` });
    try {
      const res = await runVm(["create"], { cwd: project.dir, engine });
      assert.match(res.stderr, /wrote a starter .*vm\.yaml \(box: \.\/Dockerfile\)/);
      assert.equal(res.code, 0, res.stderr);
      const { readFileSync } = await import("node:fs");
      assert.match(readFileSync(join(project.dir, "vm.yaml"), "utf8"), /box: \.\/Dockerfile/);
      assert.equal((await runVm(["destroy", "--force"], { cwd: project.dir, engine })).code, 0);
    } finally {
      project.cleanup();
    }
  });

  it("a missing image box fails with a not-found error and what to do", async () => {
    const project = makeProject({
      "vm.yaml": `project:\n  name: ${uniqueName("noimg")}\nvm:\n  box: vm-test-absent/nothing:here\n`,
    });
    try {
      const res = await runVm(["create"], { cwd: project.dir, engine });
      assert.equal(res.code, 4);
      assert.match(
        res.stderr,
        /Image 'vm-test-absent\/nothing:here' is not in the engine and could not be pulled/,
      );
      assert.match(res.stderr, /Hint: /);
      assert.doesNotMatch(res.stderr, /at .*\.ts:\d+/);
    } finally {
      project.cleanup();
    }
  });

  it("a failing build shows the failing step and the engine's message, and leaves no container", async () => {
    const image = ensureBusybox(engine);
    const name = uniqueName("fail");
    const project = makeProject({
      Dockerfile: `FROM ${image}\nRUN echo fine-${name}\nRUN sh -c 'echo broken-step >&2; exit 3'\n`,
      "vm.yaml": `project:\n  name: ${name}\nvm:\n  box: ./Dockerfile\n`,
    });
    try {
      const res = await runVm(["create"], { cwd: project.dir, engine });
      assert.equal(res.code, 1);
      assert.match(res.stderr, /broken-step/);
      assert.match(
        res.stderr,
        /Error: Build of vm-box\/.* failed at Step 3\/\d+ : RUN sh -c 'echo broken-step >&2; exit 3': .*returned a non-zero code: 3/,
      );
      assert.equal(docker(engine, ["ps", "-aq", "--filter", `label=dev.vm.project=${name}`]), "");
    } finally {
      // The step that succeeded stays as build cache (as with docker build): this test's own, removed here.
      removeStepImages(engine, name);
      project.cleanup();
    }
  });

  it("box: @missing (unquoted, as the design document writes it) fails with the import hint", async () => {
    const project = makeProject({
      "vm.yaml": `vm:\n  box: @missing\n  memory: 8gb\nproject:\n  name: ${uniqueName("snap")}\n`,
    });
    try {
      const res = await runVm(["create"], { cwd: project.dir, engine });
      assert.equal(res.code, 4);
      assert.match(
        res.stderr,
        /Snapshot '@missing' not found\. Import it first with: vm snapshot import <file>/,
      );
    } finally {
      project.cleanup();
    }
  });

  it("no engine: one clear error with a hint, exit code 6", async () => {
    const project = makeProject({ "vm.yaml": `vm:\n  box: x\n` });
    try {
      const res = await runVm(["status"], {
        cwd: project.dir,
        engine: { ...engine, host: "unix:///tmp/vm-no-engine.sock" },
      });
      assert.equal(res.code, 6);
      assert.match(
        res.stderr,
        /Cannot reach the Docker engine at unix:\/\/\/tmp\/vm-no-engine\.sock \(DOCKER_HOST\)/,
      );
      assert.match(res.stderr, /Hint: /);
      const doctor = await runVm(["doctor"], {
        cwd: project.dir,
        engine: { ...engine, host: "unix:///tmp/vm-no-engine.sock" },
      });
      assert.equal(doctor.code, 6);
      assert.match(doctor.stdout, /✗ engine/);
    } finally {
      project.cleanup();
    }
  });

  it("vm doctor reports the engine, its image store and disk space", async () => {
    const project = makeProject({});
    try {
      const res = await runVm(["doctor", "--json"], { cwd: project.dir, engine });
      assert.equal(res.code, 0, res.stderr);
      const checks = JSON.parse(res.stdout) as { name: string; ok: boolean; detail: string }[];
      const store = checks.find((c) => c.name === "image store");
      assert.match(store?.detail ?? "", engine.imageStore === "containerd" ? /containerd/ : /classic/);
      assert.ok(checks.find((c) => c.name === "engine")?.ok);
    } finally {
      project.cleanup();
    }
  });
});

describe("invalid vm.yaml", () => {
  const engine = availableEngines()[0]!;
  it("names the file, line, field and what was expected, with exit code 3 and no stack trace", async () => {
    const project = makeProject({
      "vm.yaml":
        "project:\n  name: ok\nvm:\n  box: x\n  memory: lots\nports:\n  - 3000\n  - nope\nmemroy: 1\n",
    });
    try {
      const res = await runVm(["create"], { cwd: project.dir, engine });
      assert.equal(res.code, 3);
      assert.match(res.stderr, new RegExp(`Error: ${project.dir}/vm\\.yaml is invalid:`));
      assert.match(
        res.stderr,
        /line 5, vm\.memory: expected a number of MB, a size such as "8gb" or "512mb", a percentage such as "50%", or "unlimited" \(got "lots"\)/,
      );
      assert.match(res.stderr, /line 8, ports\[1\]: expected "host:guest"/);
      assert.match(res.stderr, /line 9, memroy: unknown field \(did you mean vm\.memory\?\)/);
      assert.doesNotMatch(res.stderr, /at .*\.ts:\d+/);
      assert.equal(dockerTry(engine, ["ps", "-aq", "--filter", "label=dev.vm.project=ok"]).stdout, "");
    } finally {
      project.cleanup();
    }
  });

  it("reports YAML syntax errors with their line", async () => {
    const project = makeProject({ "vm.yaml": "vm:\n  box: [unclosed\nproject: {}\n" });
    try {
      const res = await runVm(["status"], { cwd: project.dir, engine });
      assert.equal(res.code, 3);
      assert.match(res.stderr, /is not valid YAML:\n +line \d+, column \d+: /);
    } finally {
      project.cleanup();
    }
  });
});
