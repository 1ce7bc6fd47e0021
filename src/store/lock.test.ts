import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdir, readFile, readdir, rm, utimes, writeFile } from "node:fs/promises";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ExitCode } from "../errors.ts";
import { ownerTag, self } from "../lib/owner.ts";
import type { SnapshotRef } from "../snapshot-file/names.ts";
import { rejectsVm } from "../snapshot-file/testing/assert.ts";
import { deadPid } from "../snapshot-file/testing/pid.ts";
import { tempDir } from "../snapshot-file/testing/snapshot.ts";
import { lockSnapshot } from "./lock.ts";

describe("lockSnapshot: one writer per snapshot name", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let n = 0;
  const root = () => join(dir, `root-${n++}`);
  before(async () => ({ dir, remove } = await tempDir("vm-lock-test-")));
  after(() => remove());
  const ref: SnapshotRef = { scope: "global", name: "vibe-base" };
  const lockFile = (r: string) => join(r, ".locks", "global--vibe-base.lock");
  const mine = `${ownerTag()} ${hostname()}\n`;
  const planted = async (r: string, content: string, ageSeconds = 0) => {
    await mkdir(join(r, ".locks"), { recursive: true });
    await writeFile(lockFile(r), content);
    if (ageSeconds) {
      const then = Date.now() / 1000 - ageSeconds;
      await utimes(lockFile(r), then, then);
    }
  };

  it("writes a lock file naming this process (pid, host, start time), and removes it on release", async () => {
    const r = root();
    const lock = await lockSnapshot(r, ref, "imported");
    const text = await readFile(lockFile(r), "utf8");
    assert.equal(text, mine);
    assert.match(text, new RegExp(`^${process.pid}-[0-9a-f]{8}-s`));
    await lock.release();
    assert.deepEqual(await readdir(join(r, ".locks")), []);
    await lock.release(); // twice is harmless
  });

  it("refuses a second lock while the first is held, naming the snapshot, the action and the owner", async () => {
    const r = root();
    const first = await lockSnapshot(r, ref, "imported");
    const error = await rejectsVm(lockSnapshot(r, ref, "created"), {
      code: "SNAPSHOT_BUSY",
      exitCode: ExitCode.conflict,
      message: new RegExp(`^Snapshot '@vibe-base' is being created by another vm \\(pid ${process.pid}\\)$`),
    });
    assert.match(error.hint!, /Wait for it to finish, then run the command again/);
    // Refusing did not take the first one's lock away.
    assert.equal(await readFile(lockFile(r), "utf8"), mine);
    await first.release();
    const again = await lockSnapshot(r, ref, "imported");
    await again.release();
  });

  it("refuses a lock held by another live process of this host", async () => {
    const r = root();
    // An older vm's lock (the pid alone) of a process that runs: the parent of this test.
    await planted(r, `${process.ppid}\n`);
    await rejectsVm(lockSnapshot(r, ref, "imported"), {
      code: "SNAPSHOT_BUSY",
      exitCode: ExitCode.conflict,
      message: new RegExp(`by another vm \\(pid ${process.ppid}\\)$`),
    });
  });

  it("refuses a lock of a vm on another machine sharing the config home, saying how to clear it", async () => {
    const r = root();
    await planted(r, `${ownerTag({ pid: 4242, hostId: "0123abcd", started: "x1" })} buildbox\n`);
    const error = await rejectsVm(lockSnapshot(r, ref, "imported"), {
      code: "SNAPSHOT_BUSY",
      exitCode: ExitCode.conflict,
      message: /by another vm \(pid 4242 on buildbox\)$/,
    });
    assert.match(error.hint!, new RegExp(`remove ${lockFile(r).replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}`));
  });

  it("takes over a stale lock: its process is gone, its pid now runs another process, or it is old and unreadable", async () => {
    const dead = deadPid();
    const stale = [
      `${ownerTag({ ...self(), pid: dead })} ${hostname()}\n`,
      `${dead}\n`, // an older vm's form
      // The parent runs, but started at another time than the lock says: the pid was reused.
      `${ownerTag({ ...self(), pid: process.ppid, started: "0000" })} ${hostname()}\n`,
      "",
      "garbage",
      "0\n",
      "-5\n",
    ];
    for (const content of stale) {
      const r = root();
      await planted(r, content, 60);
      const lock = await lockSnapshot(r, ref, "imported");
      assert.equal(await readFile(lockFile(r), "utf8"), mine, JSON.stringify(content));
      await lock.release();
      assert.deepEqual(await readdir(join(r, ".locks")), [], "no draft or reclaimed lock is left beside it");
    }
  });

  it("counts a young unreadable lock as held: an older vm may not have written its owner yet", async () => {
    for (const content of ["", "garbage"]) {
      const r = root();
      await planted(r, content);
      await rejectsVm(lockSnapshot(r, ref, "created"), {
        code: "SNAPSHOT_BUSY",
        exitCode: ExitCode.conflict,
        message: /^Snapshot '@vibe-base' is being created by another vm$/,
      });
      assert.equal(await readFile(lockFile(r), "utf8"), content, "the lock was left to its owner");
    }
  });

  it("keeps names apart: global and project scopes, and different projects, lock separately", async () => {
    const r = root();
    const locks = [
      await lockSnapshot(r, ref, "imported"),
      await lockSnapshot(r, { scope: "project", project: "web", name: "vibe-base" }, "created"),
      await lockSnapshot(r, { scope: "project", project: "api", name: "vibe-base" }, "created"),
      await lockSnapshot(r, { scope: "global", name: "other" }, "imported"),
    ];
    assert.deepEqual((await readdir(join(r, ".locks"))).sort(), [
      "global--other.lock",
      "global--vibe-base.lock",
      "project--api--vibe-base.lock",
      "project--web--vibe-base.lock",
    ]);
    await rejectsVm(lockSnapshot(r, { scope: "project", project: "web", name: "vibe-base" }, "created"), {
      code: "SNAPSHOT_BUSY",
      exitCode: ExitCode.conflict,
      message: /^Snapshot 'vibe-base \(project web\)' is being created by another vm/,
    });
    for (const lock of locks) await lock.release();
  });

  it("lets exactly one of many concurrent attempts win", async () => {
    const r = root();
    const attempts = await Promise.allSettled(
      Array.from({ length: 8 }, () => lockSnapshot(r, ref, "imported")),
    );
    const won = attempts.filter((a) => a.status === "fulfilled");
    assert.equal(won.length, 1);
    for (const lost of attempts.filter((a) => a.status === "rejected"))
      assert.equal((lost.reason as { code?: string }).code, "SNAPSHOT_BUSY");
    await won[0]!.value.release();
  });

  // Processes, not promises: each vm has its own owner tag, and the race between creating the lock file
  // and reading it is one between processes (an empty lock read as stale let two creates both win).
  const contend = async (r: string, count: number): Promise<string[]> => {
    // Every process says when it has tried (a file in `tried`); the winner holds the lock until all have,
    // so a process that starts late on a loaded machine still meets the held lock.
    const tried = join(r, "tried");
    await mkdir(tried, { recursive: true });
    const script = [
      `import { lockSnapshot } from ${JSON.stringify(new URL("./lock.ts", import.meta.url).href)};`,
      `import { readdirSync, writeFileSync } from "node:fs";`,
      `const ref = { scope: "global", name: "vibe-base" };`,
      `const tried = () => writeFileSync(${JSON.stringify(tried)} + "/" + process.pid, "");`,
      `const all = async () => { for (let i = 0; i < 600 && readdirSync(${JSON.stringify(tried)}).length < ${count}; i++) await new Promise((done) => setTimeout(done, 50)); };`,
      `try { const lock = await lockSnapshot(${JSON.stringify(r)}, ref, "created"); tried();`,
      `  await all(); await lock.release(); console.log("won"); }`,
      `catch (error) { tried(); console.log(error.code ?? String(error)); }`,
    ].join("\n");
    const outcomes = await Promise.all(
      Array.from(
        { length: count },
        () =>
          new Promise<string>((done, fail) => {
            const child = spawn(process.execPath, ["--input-type=module", "-e", script], {
              stdio: ["ignore", "pipe", "inherit"],
            });
            let out = "";
            child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
            child.on("error", fail);
            child.on("close", () => done(out.trim()));
          }),
      ),
    );
    await rm(tried, { recursive: true });
    return outcomes;
  };

  it("lets exactly one of many concurrent processes win, on a free name and on a stale lock", async () => {
    for (const stale of [undefined, `${deadPid()}\n`]) {
      for (let round = 0; round < 2; round++) {
        const r = root();
        if (stale) await planted(r, stale, 60);
        const outcomes = (await contend(r, 6)).sort();
        assert.deepEqual(outcomes, [
          "SNAPSHOT_BUSY",
          "SNAPSHOT_BUSY",
          "SNAPSHOT_BUSY",
          "SNAPSHOT_BUSY",
          "SNAPSHOT_BUSY",
          "won",
        ]);
        assert.deepEqual(await readdir(join(r, ".locks")), []);
      }
    }
  });
});
