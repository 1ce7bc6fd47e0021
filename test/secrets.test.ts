import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { readEntries } from "./helpers/archives.ts";
import { availableEngines } from "./helpers/engines.ts";
import { ensureBusybox } from "./helpers/fixtures.ts";
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
  });
}
