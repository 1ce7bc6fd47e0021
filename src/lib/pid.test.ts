import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { once } from "node:events";
import { describe, it } from "node:test";
import { alive } from "./pid.ts";

describe("alive", () => {
  it("is true for this process and false for one that has exited and been reaped", () => {
    assert.equal(alive(process.pid), true);
    assert.equal(alive(spawnSync(process.execPath, ["-e", ""]).pid), false);
  });

  it(
    "is false for a zombie: exited, waiting for a parent that never collects it",
    { skip: !existsSync("/proc/self/stat") },
    async () => {
      // `sleep 0` exits at once; its parent becomes `sleep 5` (exec), which never waits for children.
      const parent = spawn("sh", ["-c", "sleep 0 & echo $!; exec sleep 5"], {
        stdio: ["ignore", "pipe", "ignore"],
      });
      try {
        const [line] = (await once(parent.stdout, "data")) as [Buffer];
        const pid = Number(line.toString().trim());
        for (let i = 0; i < 100 && !/\) Z /.test(readFileSync(`/proc/${pid}/stat`, "utf8")); i++)
          await new Promise((r) => setTimeout(r, 20));
        assert.match(readFileSync(`/proc/${pid}/stat`, "utf8"), /\) Z /, "the child is a zombie");
        assert.doesNotThrow(() => process.kill(pid, 0), "a zombie still answers signal 0");
        assert.equal(alive(pid), false);
      } finally {
        parent.kill("SIGKILL");
      }
    },
  );
});
