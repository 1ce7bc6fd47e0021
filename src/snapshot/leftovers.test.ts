import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { hostname } from "node:os";
import { describe, it } from "node:test";
import { Label } from "../engine/labels.ts";
import { MemoryEngine } from "../engine/testing/memory-engine.ts";
import { ownerTag, self } from "../lib/owner.ts";
import { cleanLeftovers, STAGING_REPO } from "./leftovers.ts";

const snapshotRole = { [Label.managed]: "true", [Label.role]: "snapshot" };
const hostTag = createHash("sha256").update(hostname()).digest("hex").slice(0, 8);

/** The pid of a process that has exited (spawned and waited for), so nobody owns it now. */
function deadPid(): number {
  return spawnSync(process.execPath, ["-e", ""]).pid;
}

function probe(engine: MemoryEngine, name: string, owner: string) {
  return engine.addContainer(name, "busybox", { ...snapshotRole, [Label.owner]: owner });
}

describe("cleanLeftovers (on an in-memory engine)", () => {
  it("removes the probe containers and staged tags of a dead vm on this host (as this vm and older ones name them), and nothing else", async () => {
    const engine = new MemoryEngine();
    engine.addImage("busybox", { tags: ["busybox:latest"] });
    const dead = deadPid();
    const live = process.ppid;
    await probe(engine, "dead-probe", `${hostname()}/${dead}`);
    await probe(engine, "dead-probe-now", ownerTag({ ...self(), pid: dead }));
    await probe(engine, "remote-probe-now", ownerTag({ pid: dead, hostId: "0badc0de", started: "" }));
    await probe(engine, "live-probe", `${hostname()}/${live}`);
    await probe(engine, "remote-probe", `elsewhere/${dead}`);
    const staged = engine.addImage("staged", {
      labels: snapshotRole,
      tags: [`${STAGING_REPO}:${dead}-${hostTag}-aaaa`, "vm-snapshot/global:kept"],
    });
    engine.addImage("live-staged", {
      labels: snapshotRole,
      tags: [`${STAGING_REPO}:${live}-${hostTag}-bbbb`],
    });
    engine.addImage("remote-staged", {
      labels: snapshotRole,
      tags: [`${STAGING_REPO}:${dead}-0badc0de-s-cccc`],
    });

    assert.equal(
      await cleanLeftovers({
        engine,
        snapshots: undefined as never,
        env: {},
        extraLabels: {},
        log: () => {},
      }),
      3,
    );

    const names = (await engine.containers.list({})).map((c) => c.name).sort();
    assert.deepEqual(names, ["live-probe", "remote-probe", "remote-probe-now"]);
    assert.deepEqual(
      engine.imageRecords.get(staged)?.tags,
      ["vm-snapshot/global:kept"],
      "only the staging tag goes",
    );
    const tags = (await engine.images.list(snapshotRole)).flatMap((i) => i.tags).sort();
    assert.deepEqual(
      tags,
      [
        `${STAGING_REPO}:${dead}-0badc0de-s-cccc`,
        `${STAGING_REPO}:${live}-${hostTag}-bbbb`,
        "vm-snapshot/global:kept",
      ].sort(),
    );
  });
});
