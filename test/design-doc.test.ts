import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { availableEngines, type TestEngine } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import { startS3Server } from "./helpers/s3-server.ts";
import { cleanupRun, REPO, RUN_ID, TEST_LABEL, VM_BIN } from "./helpers/vm.ts";

/**
 * The design document's two stories and its team workflow, run from the document's own text
 * (docs/design/snapshot-export-import-proposal.md): each shell block is cut out of it and run by bash as
 * written. What is substituted: the image content (Dockerfile.vibe is a tiny busybox image with a marker
 * instead of Node, Python, Rust and AI CLIs, which a registry-less machine cannot install in a test), and
 * `aws s3 cp`, played by test/fixtures/aws (the AWS SDK; Debian's awscli predates AWS_ENDPOINT_URL): the
 * team workflow's `s3://company-vms/` is a bucket of an S3 server on loopback (fauxqs).
 * Machine A is the Docker 20.10 engine (classic store), machine B the Docker 26 one (containerd store),
 * each with its own HOME, so `~/Desktop`, `~/Downloads` and the config home are the machine's own.
 */
const DOC = readFileSync(join(REPO, "docs/design/snapshot-export-import-proposal.md"), "utf8");
const engines = availableEngines();
const engineA = engines[0]!;
const engineB = engines.at(-1)!;
const root = mkdtempSync(join(tmpdir(), "vm-design-"));
const bin = join(root, "bin");
mkdirSync(bin);
symlinkSync(VM_BIN, join(bin, "vm"));
symlinkSync(join(REPO, "test/fixtures/aws"), join(bin, "aws"));
/** Where the team workflow's bucket is: set once the S3 server runs. */
let s3Env: Record<string, string> = {};

/** The first ```bash block after `heading`, as the document writes it. */
function block(heading: string): string {
  const at = DOC.indexOf(heading);
  assert.ok(at >= 0, `the design document has no '${heading}'`);
  const match = /```bash\n([\s\S]*?)```/.exec(DOC.slice(at));
  assert.ok(match, `no bash block after '${heading}'`);
  return match[1]!;
}

interface Machine {
  name: string;
  engine: TestEngine;
  home: string;
}
const machine = (name: string, engine: TestEngine): Machine => {
  const home = join(root, name);
  mkdirSync(home, { recursive: true });
  return { name, engine, home };
};

/** Runs a script with bash -e on a machine, `vm` on PATH; resolves with what it printed. */
function run(
  m: Machine,
  script: string,
  cwd: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-euo", "pipefail", "-c", script], {
      cwd,
      env: {
        PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
        HOME: m.home,
        DOCKER_HOST: m.engine.host,
        VM_LABELS: `${TEST_LABEL}=${RUN_ID}`,
        ...s3Env,
      },
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

/** The Dockerfile.vibe of this test: the document's base image, reduced to what proves it travelled. */
function dockerfileVibe(engine: TestEngine, marker: string): string {
  return `FROM ${ensureBusybox(engine)}\nRUN echo ${marker} > /etc/vibe-marker\n`;
}

after(() => {
  for (const engine of new Set([engineA, engineB])) cleanupRun(engine);
  rmSync(root, { recursive: true, force: true });
});

describe("the design document, typed as written", () => {
  it("Machine A builds, snapshots and exports; Machine B imports, lists and starts from it", async () => {
    const a = machine("machine-a", engineA);
    const b = machine("machine-b", engineB);
    const marker = `vibe-${RUN_ID}`;
    // Machine A: a folder holding only what Step 1 writes and the Dockerfile it names.
    const folderA = join(a.home, "base");
    mkdirSync(folderA);
    writeFileSync(join(folderA, "Dockerfile.vibe"), dockerfileVibe(engineA, marker));
    const exported = await run(a, block("### Machine A: Create and Export"), folderA);
    assert.equal(exported.code, 0, `Machine A's steps failed:\n${exported.stdout}\n${exported.stderr}`);
    assert.match(exported.stdout, /Created snapshot vibe-base \(project vibe-base-builder\)/);
    assert.match(exported.stdout, /Exported vibe-base to .*\/Desktop\/vibe-base\.snapshot\.tar\.gz/);

    // Carried to Machine B (a USB stick, a shared drive).
    mkdirSync(join(b.home, "Downloads"));
    copyFileSync(
      join(a.home, "Desktop", "vibe-base.snapshot.tar.gz"),
      join(b.home, "Downloads", "vibe-base.snapshot.tar.gz"),
    );
    const projectB = join(b.home, "my-project");
    mkdirSync(projectB);
    const used = await run(b, block("### Machine B: Import and Use"), projectB);
    assert.equal(used.code, 0, `Machine B's steps failed:\n${used.stdout}\n${used.stderr}`);
    assert.match(used.stdout, /Imported snapshot @vibe-base/);
    // Step 2's listing, with the columns the document shows.
    assert.match(used.stdout, /NAME +.*CREATED +.*SIZE +.*DESCRIPTION/);
    assert.match(used.stdout, /@vibe-base +.*Base vibe image: Node LTS/);
    assert.match(
      used.stdout,
      /Created environment my-project-dev for project 'my-project' from snapshot @vibe-base/,
    );
    const inside = await run(b, "vm exec -- cat /etc/vibe-marker && vm status", projectB);
    assert.equal(inside.code, 0, inside.stderr);
    assert.match(inside.stdout, new RegExp(`^${marker}\\n`));
    assert.match(inside.stdout, /Memory: +8\.0 GB/);
    for (const [m, dir] of [
      [b, projectB],
      [a, folderA],
    ] as const)
      assert.equal((await run(m, "vm destroy --force", dir)).code, 0);
  });

  it("the team workflow: DevOps builds and exports, developers import and `echo vm.box: @... >> vm.yaml`", async () => {
    const devops = machine("devops", engineA);
    const dev = machine("developer", engineB);
    const marker = `team-${RUN_ID}`;
    const workflow = block("## Example: Team Workflow");
    const s3 = await startS3Server();
    s3.createBucket("company-vms");
    s3Env = s3.env;
    after(() => s3.close());
    const [devopsPart, developerPart] = workflow.split("# Developers use it");
    assert.ok(devopsPart && developerPart, "the workflow has a DevOps part and a developers' part");
    const vibe = join(devops.home, "devops", "base-images", "vibe");
    mkdirSync(vibe, { recursive: true });
    writeFileSync(join(vibe, "Dockerfile.vibe"), dockerfileVibe(engineA, marker));
    // The document does not show this vm-base.yaml; it is Machine A's, for this team's image.
    writeFileSync(
      join(vibe, "vm-base.yaml"),
      "version: 1.2.1\nprovider: docker\nvm:\n  box: ./Dockerfile.vibe\nproject:\n  name: vibe-2024-10-builder\n",
    );
    const built = await run(devops, devopsPart, devops.home);
    assert.equal(built.code, 0, `DevOps' steps failed:\n${built.stdout}\n${built.stderr}`);
    assert.match(
      built.stdout,
      /Exported vibe-2024-10 to s3:\/\/company-vms\/vibe-2024-10\.snapshot\.tar\.gz/,
    );
    assert.ok(await s3.head("company-vms", "vibe-2024-10.snapshot.tar.gz"), "the file is in the bucket");

    // "In any project": one with a vm.yaml whose box is a Dockerfile, and one with no vm.yaml at all.
    const withConfig = join(dev.home, "app");
    mkdirSync(withConfig);
    writeFileSync(join(withConfig, "Dockerfile"), `FROM ${ensureBusybox(engineB)}\n`);
    writeFileSync(
      join(withConfig, "vm.yaml"),
      "version: 1.2.1\nprovider: docker\nvm:\n  box: ./Dockerfile\n  memory: 2gb\nproject:\n  name: team-app\n",
    );
    const empty = join(dev.home, "fresh-project");
    mkdirSync(empty);
    mkdirSync(join(dev.home, "Downloads"));
    const [importPart, projectPart] = developerPart.split("# In any project");
    assert.ok(importPart && projectPart);
    const imported = await run(dev, importPart, dev.home);
    assert.equal(imported.code, 0, `the import failed:\n${imported.stdout}\n${imported.stderr}`);
    for (const dir of [withConfig, empty]) {
      const created = await run(dev, projectPart, dir);
      assert.equal(created.code, 0, `${dir}: ${created.stdout}\n${created.stderr}`);
      assert.match(created.stdout, /from snapshot @vibe-2024-10/);
      const inside = await run(dev, "vm exec -- cat /etc/vibe-marker", dir);
      assert.equal(inside.stdout, `${marker}\n`, inside.stderr);
      if (dir === withConfig) {
        // The appended line overrides the nested box, and vm says which lines it weighed.
        assert.match(created.stderr, /vm\.box .*line 4.*line 8/s);
        const status = await run(dev, "vm status", dir);
        assert.match(status.stdout, /Memory: +2\.0 GB/, "the rest of the nested vm: block still applies");
      }
      assert.equal((await run(dev, "vm destroy --force", dir)).code, 0);
    }
    assert.equal((await run(devops, "vm destroy --force", vibe)).code, 0);
  });
});
