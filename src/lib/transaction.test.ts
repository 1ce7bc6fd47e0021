import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { describe, it } from "node:test";
import { Transaction, transaction } from "./transaction.ts";

describe("transactions (lib/transaction.ts)", () => {
  it("a failure stops the work in flight, undoes the steps newest first, runs the final steps, and is rethrown", async () => {
    const log: string[] = [];
    await assert.rejects(
      transaction(async (tx) => {
        tx.finally(() => log.push("release lock"));
        tx.stop(() => log.push("stop reading"));
        tx.undo(() => log.push("remove volume"));
        tx.undo(() => {
          log.push("remove image");
          throw new Error("the engine went away");
        });
        tx.undo(() => log.push("remove spool"));
        throw new Error("checksum mismatch");
      }),
      /checksum mismatch/,
    );
    assert.deepEqual(log, ["stop reading", "remove spool", "remove image", "remove volume", "release lock"]);
  });

  it("success undoes nothing and runs the final steps", async () => {
    const log: string[] = [];
    const result = await transaction(async (tx) => {
      tx.undo(() => log.push("undo"));
      tx.finally(() => log.push("release"));
      return tx.commit(async () => "registered");
    });
    assert.equal(result, "registered");
    assert.deepEqual(log, ["release"]);
  });

  it("a failed commit rolls back everything before it", async () => {
    const log: string[] = [];
    await assert.rejects(
      transaction(async (tx) => {
        tx.undo(() => log.push("remove loaded image"));
        return tx.commit(async () => {
          throw new Error("tag failed");
        });
      }),
      /tag failed/,
    );
    assert.deepEqual(log, ["remove loaded image"]);
  });

  it("rolls back once when the failure and an interruption both ask", async () => {
    const tx = new Transaction();
    let undone = 0;
    tx.undo(() => undone++);
    await Promise.all([tx.rollback(), tx.interrupted(), tx.rollback()]);
    assert.equal(undone, 1);
  });

  it("an interruption during the commit lets it finish instead of undoing it", async () => {
    const tx = new Transaction();
    const log: string[] = [];
    tx.undo(() => log.push("undo"));
    tx.finally(() => log.push("release"));
    let finish!: () => void;
    const committing = tx.commit(() =>
      new Promise<void>((resolve) => (finish = resolve)).then(() => log.push("committed")),
    );
    const interrupted = tx.interrupted();
    finish();
    await Promise.all([committing, interrupted]);
    assert.deepEqual(log, ["committed", "release"]);
  });

  it("SIGTERM mid-work rolls back, runs the final steps and exits 143", () => {
    const script = `
      import { transaction } from ${JSON.stringify(new URL("./transaction.ts", import.meta.url).href)};
      await transaction(async (tx) => {
        tx.undo(() => console.log("undone"));
        tx.finally(() => console.log("released"));
        process.kill(process.pid, "SIGTERM");
        await new Promise((resolve) => setTimeout(resolve, 5000));
        console.log("not reached");
      });
    `;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(run.status, 143, run.stderr);
    assert.equal(run.stdout, "undone\nreleased\n");
  });
  it("after an interruption's rollback, the commit is refused and a step made meanwhile is undone too", async () => {
    const tx = new Transaction();
    const log: string[] = [];
    tx.undo(() => log.push("remove loaded image"));
    const rollback = tx.interrupted();
    tx.undo(() => log.push("remove volume made meanwhile"));
    await rollback;
    await assert.rejects(
      tx.commit(async () => log.push("registered")),
      /rolled back before its commit/,
    );
    tx.undo(() => log.push("remove late volume"));
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(log, ["remove loaded image", "remove volume made meanwhile", "remove late volume"]);
  });
});
