import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { readEntries } from "./helpers/archives.ts";
import { availableEngines } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
import { DECOYS, PLANTED, SECRET_VALUES, T, writeSecretsContext } from "./helpers/planted-secrets.ts";
import { cleanupRun, makeProject, runVm, uniqueName } from "./helpers/vm.ts";

/** What vm itself records about a snapshot must never carry a secret the user handed to the build. */
for (const engine of availableEngines()) {
  describe(`secrets vm could write itself (${engine.name})`, () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-secrets-"));
    const env = { XDG_CONFIG_HOME: join(dir, "home") };
    const vm = (args: string[], cwd = dir) => runVm(args, { cwd, engine, env });
    after(() => {
      cleanupRun(engine);
      rmSync(dir, { recursive: true, force: true });
    });

    it("a build arg's value never reaches the exported file's metadata; its name does", async () => {
      const name = uniqueName("buildarg");
      // Invented, but in npm's token format; assembled so repository scanners do not flag this file.
      const token = ["npm", "_", "Q7vLk2Rt9sWx4Zb8Nm3Pc6Hd1Jf5Gy0Ua2Ke"].join("");
      const p = makeProject({
        Dockerfile: `FROM ${ensureBusybox(engine)}\nARG NPM_TOKEN\nRUN echo ${name} > /m\n`,
      });
      try {
        const made = await vm(
          [
            "snapshot",
            "create",
            `@${name}`,
            "--from-dockerfile",
            "Dockerfile",
            "--build-arg",
            `NPM_TOKEN=${token}`,
          ],
          p.dir,
        );
        assert.equal(made.code, 0, made.stderr);
        const out = join(dir, `${name}.snapshot.tar.gz`);
        const exported = await vm(["snapshot", "export", `@${name}`, "-o", out]);
        assert.equal(exported.code, 0, exported.stderr);
        const entries = await readEntries(out);
        const buildInfo = entries.find((e) => e.name === "metadata/build-info.json");
        assert.ok(buildInfo, "the file has metadata/build-info.json");
        const info = JSON.parse(buildInfo.data.toString("utf8")) as {
          build_args: Record<string, unknown>;
          build_args_note?: string;
        };
        assert.deepEqual(info.build_args, { NPM_TOKEN: null });
        assert.match(info.build_args_note ?? "", /not recorded/);
        for (const entry of entries.filter((e) => !e.name.startsWith("images/")))
          assert.equal(entry.data.includes(token), false, `${entry.name} holds the token`);
        const inspect = await vm(["snapshot", "inspect", `@${name}`, "--json"]);
        assert.equal(inspect.stdout.includes(token), false);
      } finally {
        p.cleanup();
      }
    });

    it("vm.yaml's environment reaches vm exec but no byte of the exported snapshot, image layers included", async () => {
      const name = uniqueName("envsecret");
      const token = ["ghp", "_", "Zt4Lq8Vx2Nm7Rk3Wp9Bc5Hd1Jf6Gy0Ua8Se"].join("");
      const p = makeProject({
        "vm.yaml": `project:\n  name: ${name}\nvm:\n  box: ${ensureBusybox(engine)}\nenvironment:\n  GITHUB_TOKEN: ${token}\n`,
      });
      try {
        assert.equal((await vm(["create"], p.dir)).code, 0);
        const seen = await vm(["exec", "--", "sh", "-c", "echo $GITHUB_TOKEN"], p.dir);
        assert.equal(seen.stdout.trim(), token, "the environment is given to vm exec");
        const made = await vm(["snapshot", "create", "base", "--quiesce"], p.dir);
        assert.equal(made.code, 0, made.stderr);
        const out = join(dir, `${name}.snapshot.tar`);
        const exported = await vm(["snapshot", "export", "base", "-o", out, "--compression", "none"], p.dir);
        assert.equal(exported.code, 0, exported.stderr);
        assert.equal(readFileSync(out).includes(token), false, "the token is somewhere in the file");
        assert.doesNotMatch(exported.stderr, /GITHUB_TOKEN/);
        assert.equal((await vm(["destroy", "--force"], p.dir)).code, 0);
        assert.equal((await vm(["snapshot", "delete", "base", "--force"], p.dir)).code, 0);
      } finally {
        p.cleanup();
      }
    });
  });
}

interface Finding {
  path: string;
  kind: string;
  preview?: string;
  source?: string;
}

/** The scan finds what people leak, names where and what, shows only a redacted preview, and stays quiet on decoys. */
for (const engine of availableEngines()) {
  describe(`the secret scan of a planted image (${engine.name})`, () => {
    const dir = mkdtempSync(join(tmpdir(), "vm-planted-"));
    const env = { XDG_CONFIG_HOME: join(dir, "home") };
    const vm = (args: string[], cwd = dir) => runVm(args, { cwd, engine, env });
    const name = uniqueName("planted");
    const file = join(dir, `${name}.snapshot.tar.gz`);
    let findings: Finding[] = [];
    after(() => {
      cleanupRun(engine);
      rmSync(dir, { recursive: true, force: true });
    });

    before(async () => {
      const context = join(dir, "context");
      writeSecretsContext(context, ensureBusybox(engine));
      const made = await vm([
        "snapshot",
        "create",
        `@${name}`,
        "--from-dockerfile",
        join(context, "Dockerfile"),
        "--build-arg",
        `NPM_TOKEN=${T.npm}`,
        "--build-arg",
        `DEPLOY_SECRET=${T.deploySecret}`,
      ]);
      assert.equal(made.code, 0, made.stderr);
    });

    it("vm snapshot scan @name reports every planted secret with a redacted preview, and exits 8", async () => {
      const scan = await vm(["snapshot", "scan", `@${name}`, "--json"]);
      assert.equal(scan.code, 8, scan.stderr);
      findings = (JSON.parse(scan.stdout) as { findings: Finding[] }).findings;
      for (const [path, kind] of PLANTED) {
        const at = findings.filter((f) =>
          path === "history" ? f.path.startsWith("history: step ") : f.path === path,
        );
        assert.ok(
          at.some((f) => kind.test(f.kind)),
          `${path}: ${kind} not reported; found there: ${JSON.stringify(at)}`,
        );
      }
      assert.ok(PLANTED.length >= 30);
      // Each planted place shows a redacted preview (a private key is named, not previewed).
      for (const path of new Set(PLANTED.map(([p]) => p)).values()) {
        if (path === "root/.ssh/id_ed25519") continue;
        const at = findings.filter((f) =>
          path === "history" ? f.path.startsWith("history: step ") : f.path === path,
        );
        assert.ok(
          at.some((f) => f.preview),
          `${path}: no finding with a preview: ${JSON.stringify(at)}`,
        );
      }
      for (const f of findings.filter((f) => f.preview !== undefined))
        assert.match(f.preview!, /^.{0,33}….{0,4}$/);
      for (const value of SECRET_VALUES) {
        assert.equal(
          scan.stdout.includes(value),
          false,
          `the scan printed a secret in full: ${value.slice(0, 6)}…`,
        );
        assert.equal(scan.stderr.includes(value), false);
      }
    });

    it("stays quiet on decoys: a CA bundle, .env.example, docs, lock files, base64, libraries' fixtures", () => {
      assert.ok(findings.length > 0, "the scan above ran");
      const loud = findings.filter((f) => DECOYS.some((decoy) => f.path === decoy));
      assert.deepEqual(loud, []);
    });

    it("export warns with the same findings, and scanning the file finds them without an engine", async () => {
      const exported = await vm(["snapshot", "export", `@${name}`, "-o", file]);
      assert.equal(exported.code, 0, exported.stderr);
      assert.match(exported.stderr, /Warning: the image holds likely secrets/);
      assert.match(exported.stderr, /config: Env GITHUB_TOKEN: GitHub token \(ghp_…/);
      assert.match(exported.stderr, /\/root\/\.codex\/auth\.json: Codex login/);
      for (const value of SECRET_VALUES) assert.equal(exported.stderr.includes(value), false);
      const scan = await runVm(["snapshot", "scan", file, "--json"], {
        cwd: dir,
        engine: { ...engine, host: "unix:///nonexistent/vm-no-engine.sock" },
        env,
      });
      assert.equal(scan.code, 8, scan.stderr);
      const key = (f: Finding) => `${f.path}\u0000${f.kind}\u0000${f.preview ?? ""}`;
      const fromFile = (JSON.parse(scan.stdout) as { findings: Finding[] }).findings.map(key).sort();
      assert.deepEqual(fromFile, findings.map(key).sort());
    });

    it("--fail-on-secrets refuses and writes nothing", async () => {
      const refused = join(dir, "refused.snapshot.tar.gz");
      const res = await vm(["snapshot", "export", `@${name}`, "-o", refused, "--fail-on-secrets"]);
      assert.equal(res.code, 1);
      assert.match(res.stderr, /likely secrets, so nothing was exported/);
      // Refused on the image config and history, before the save stream was read: no file's finding.
      assert.match(res.stderr, /config: Env GITHUB_TOKEN: GitHub token/);
      assert.match(res.stderr, /history: step \d+: npm token/);
      assert.doesNotMatch(res.stderr, /\/root\/\.codex\/auth\.json/);
      assert.equal(existsSync(refused), false);
      assert.deepEqual(
        readdirSync(dir).filter((f) => f.startsWith("refused")),
        [],
      );
    });

    it("--allow and secrets.ignore let known findings through, by place, file name or kind", async () => {
      const ignore = join(dir, "home", "vm", "secrets.ignore");
      writeFileSync(ignore, "# fixtures\n/root/.ssh/*\nSlack webhook   # the team's alerts\n*.tfrc.json\n");
      try {
        const scan = await vm([
          "snapshot",
          "scan",
          `@${name}`,
          "--json",
          "--allow",
          "config:*",
          "--allow",
          "history:*",
        ]);
        assert.equal(scan.code, 8, scan.stderr);
        const result = JSON.parse(scan.stdout) as { findings: Finding[]; allowed: number };
        const left = (test: (f: Finding) => boolean) => result.findings.filter(test);
        assert.deepEqual(
          left((f) => /^(?:config|history):/.test(f.path)),
          [],
        );
        assert.deepEqual(
          left((f) => f.path.startsWith("root/.ssh/") || f.kind === "Slack webhook"),
          [],
        );
        assert.deepEqual(
          left((f) => f.path.endsWith(".tfrc.json")),
          [],
        );
        assert.ok(left((f) => f.path === "root/.codex/auth.json").length > 0, "the rest is still reported");
        assert.equal(result.allowed, findings.length - result.findings.length);
        const text = await vm(["snapshot", "scan", `@${name}`, "--allow", "config:*"]);
        assert.match(text.stdout, /\d+ finding\(s\) allowed by secrets.ignore or --allow/);
      } finally {
        rmSync(ignore, { force: true });
      }
    });
  });
}

describe("vm snapshot scan of a clean image", () => {
  const engine = availableEngines()[0]!;
  const dir = mkdtempSync(join(tmpdir(), "vm-clean-"));
  const env = { XDG_CONFIG_HOME: join(dir, "home") };
  after(() => {
    cleanupRun(engine);
    rmSync(dir, { recursive: true, force: true });
  });

  it("says so and exits 0", async () => {
    const name = uniqueName("clean");
    const p = makeProject({ Dockerfile: `FROM ${ensureBusybox(engine)}\nRUN echo ${name} > /m\n` });
    try {
      const vm = (args: string[]) => runVm(args, { cwd: p.dir, engine, env });
      assert.equal((await vm(["snapshot", "create", `@${name}`, "--from-dockerfile", "Dockerfile"])).code, 0);
      const scan = await vm(["snapshot", "scan", `@${name}`]);
      assert.equal(scan.code, 0, scan.stderr);
      assert.match(scan.stdout, new RegExp(`No likely secrets in @${name}`));
    } finally {
      p.cleanup();
    }
  });
});
