import assert from "node:assert/strict";
import { mkdir, readFile, readdir, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { ExitCode } from "../errors.ts";
import { ownerTag, self } from "../lib/owner.ts";
import type { SnapshotMetadata } from "../snapshot-file/metadata.ts";
import type { SnapshotRef } from "../snapshot-file/names.ts";
import { rejectsVm } from "../snapshot-file/testing/assert.ts";
import { deadPid } from "../snapshot-file/testing/pid.ts";
import { sampleMetadata, tempDir } from "../snapshot-file/testing/snapshot.ts";
import { SnapshotStore } from "./store.ts";

const global = (name: string): SnapshotRef => ({ scope: "global", name });
const project = (p: string, name: string): SnapshotRef => ({ scope: "project", project: p, name });
const metaFor = (ref: SnapshotRef, fields: Partial<SnapshotMetadata> = {}): SnapshotMetadata =>
  sampleMetadata({
    name: ref.name,
    scope: ref.scope,
    project: ref.scope === "project" ? ref.project : null,
    ...fields,
  });

describe("SnapshotStore", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let n = 0;
  /** A store of its own for each test, under the test's temporary folder. */
  const fresh = () => new SnapshotStore(join(dir, `store-${n++}`, "vm", "snapshots"));
  before(async () => ({ dir, remove } = await tempDir("vm-store-test-")));
  after(() => remove());

  it("lives under $XDG_CONFIG_HOME/vm/snapshots, else $HOME/.config/vm/snapshots", () => {
    assert.equal(
      SnapshotStore.fromEnv({ XDG_CONFIG_HOME: "/x/config", HOME: "/home/u" }).root,
      "/x/config/vm/snapshots",
    );
    assert.equal(SnapshotStore.fromEnv({ HOME: "/home/u" }).root, "/home/u/.config/vm/snapshots");
    assert.equal(
      SnapshotStore.fromEnv({ XDG_CONFIG_HOME: "", HOME: "/home/u" }).root,
      "/home/u/.config/vm/snapshots",
    );
    assert.equal(SnapshotStore.fromEnv({}).root, join(homedir(), ".config", "vm", "snapshots"));
  });

  it("keeps global snapshots in global/<name> and project ones in <project>/<name>", () => {
    const store = new SnapshotStore("/r");
    assert.equal(store.dir(global("base")), "/r/global/base");
    assert.equal(store.dir(project("web", "base")), "/r/web/base");
  });

  it("writes metadata and reads back exactly what was written", async () => {
    const store = fresh();
    const ref = global("vibe-base");
    const metadata = metaFor(ref, { description: "written", volumes: ["data"] });
    await store.write(ref, metadata);
    assert.deepEqual(await store.read(ref), metadata);
    const text = await readFile(join(store.dir(ref), "metadata.json"), "utf8");
    assert.deepEqual(JSON.parse(text), metadata);
    assert.ok(text.endsWith("}\n"));
  });

  it("reads an absent snapshot as undefined, in an empty or missing store", async () => {
    const store = fresh();
    assert.equal(await store.read(global("nothing")), undefined);
    assert.deepEqual(await store.list(), []);
  });

  it("replaces a snapshot so that a reader sees the old or the new one at every moment, never none", async () => {
    const store = fresh();
    const ref = project("web", "base");
    await store.write(ref, metaFor(ref, { description: "v0" }));
    let writing = true;
    const seen = new Set<string>();
    let absent = 0;
    const reading = (async () => {
      while (writing) {
        const read = await store.read(ref);
        if (read) seen.add(read.description);
        else absent++;
      }
    })();
    for (let i = 1; i <= 60; i++) await store.write(ref, metaFor(ref, { description: `v${i}` }));
    writing = false;
    await reading;
    assert.equal(absent, 0, "a read found no snapshot while it was being replaced");
    assert.ok(seen.size > 1, "the reader saw the replacements");
    assert.equal((await store.read(ref))?.description, "v60");
    assert.deepEqual(await readdir(store.dir(ref)), ["metadata.json"]);
  });

  it("leaves no staging folder behind after writes and removals", async () => {
    const store = fresh();
    const ref = global("a");
    await store.write(ref, metaFor(ref));
    await store.write(ref, metaFor(ref, { description: "again" }));
    await store.remove(ref);
    assert.deepEqual(await readdir(join(store.root, ".staging")), []);
    assert.deepEqual(await readdir(join(store.root, "global")), []);
  });

  it("lists every snapshot, sorted by name then scope, skipping hidden folders and names that are not snapshots", async () => {
    const store = fresh();
    const refs = [global("zeta"), project("web", "alpha"), global("alpha"), project("api", "mid")];
    for (const ref of refs) await store.write(ref, metaFor(ref));
    // Not snapshots: the store's own folders, and a folder name no snapshot may have.
    await mkdir(join(store.root, ".locks", "x"), { recursive: true });
    await writeFile(join(store.root, ".locks", "x", "metadata.json"), JSON.stringify(metaFor(global("x"))));
    await mkdir(join(store.root, "global", "Not_A_Name"), { recursive: true });
    await writeFile(join(store.root, "global", "Not_A_Name", "metadata.json"), "{}");
    await mkdir(join(store.root, "global", "empty"), { recursive: true });
    const listed = await store.list();
    assert.deepEqual(
      listed.map((m) => `${m.name}:${m.scope}:${m.project ?? ""}`),
      ["alpha:global:", "alpha:project:web", "mid:project:api", "zeta:global:"],
    );
  });

  it("reports an unreadable snapshot through onBroken and lists the rest", async () => {
    const store = fresh();
    await store.write(global("good"), metaFor(global("good")));
    await mkdir(join(store.root, "global", "broken"), { recursive: true });
    const file = join(store.root, "global", "broken", "metadata.json");
    await writeFile(file, "{ half a file");
    const broken: [string, string][] = [];
    const listed = await store.list((f, error) => broken.push([f, error.message]));
    assert.deepEqual(
      listed.map((m) => m.name),
      ["good"],
    );
    assert.equal(broken.length, 1);
    assert.equal(broken[0]![0], file);
    assert.match(broken[0]![1], /is not valid JSON/);
  });

  it("refuses metadata that is not JSON or not a snapshot, naming the file", async () => {
    const store = fresh();
    const ref = global("bad");
    await mkdir(store.dir(ref), { recursive: true });
    const file = join(store.dir(ref), "metadata.json");
    await writeFile(file, "not json");
    await rejectsVm(store.read(ref), {
      code: "SNAPSHOT_METADATA_INVALID",
      exitCode: ExitCode.integrity,
      message: new RegExp(`^${escape(file)} is not valid JSON$`),
    });
    await writeFile(file, JSON.stringify({ ...metaFor(ref), format: 2 }));
    const error = await rejectsVm(store.read(ref), {
      code: "SNAPSHOT_METADATA_INVALID",
      exitCode: ExitCode.integrity,
      message: new RegExp(`^${escape(file)} is not a snapshot vm can read \\(format: `),
    });
    assert.match(error.hint!, /newer vm/);
  });

  it("removes a snapshot, and removing an absent one is no error", async () => {
    const store = fresh();
    const ref = global("gone");
    await store.write(ref, metaFor(ref));
    await store.remove(ref);
    assert.equal(await store.read(ref), undefined);
    await store.remove(ref);
    await store.remove(project("never", "was"));
  });

  it("a reader racing replacements never sees a partial or unparsable metadata.json", async () => {
    const store = fresh();
    const ref = global("busy");
    const big = (c: string) => metaFor(ref, { description: c.repeat(50_000) });
    await store.write(ref, big("A"));
    let writing = true;
    const seen = new Set<string>();
    const reader = (async () => {
      while (writing) {
        const m = await store.read(ref);
        if (m) {
          assert.equal(m.description.length, 50_000);
          assert.ok(/^(A+|B+)$/.test(m.description), "one whole version, not a mix");
          seen.add(m.description[0]!);
        }
      }
    })();
    for (let i = 0; i < 20; i++) await store.write(ref, big(i % 2 ? "A" : "B"));
    writing = false;
    await reader;
    assert.ok(seen.size >= 1);
  });

  it("hides what a killed writer staged, and the next write removes it; live or other hosts' staging stays", async () => {
    const store = fresh();
    const staging = join(store.root, ".staging");
    const dead = `${ownerTag({ ...self(), pid: deadPid() })}-0badc0ffee00`;
    const older = `${deadPid()}-0badc0ffee01`; // an older vm's form: the pid alone
    const live = `${ownerTag({ ...self(), pid: process.ppid, started: "" })}-0000feedbeef`;
    const own = `${ownerTag()}-00000000cafe`;
    const remote = `${ownerTag({ pid: 77, hostId: "0123abcd", started: "x" })}-00000000beef`;
    for (const name of [dead, `${dead}.old`, older, live, own, remote]) {
      await mkdir(join(staging, name), { recursive: true });
      await writeFile(join(staging, name, "metadata.json"), '{"half":');
    }
    assert.deepEqual(await store.list(), []);
    await store.write(global("next"), metaFor(global("next")));
    assert.deepEqual((await readdir(staging)).sort(), [live, own, remote].sort());
  });

  it("tells whether another snapshot uses the same engine image", async () => {
    const store = fresh();
    const image = `sha256:${"9".repeat(64)}`;
    await store.write(global("a"), metaFor(global("a"), { engine_image_id: image }));
    await store.write(project("web", "a"), metaFor(project("web", "a"), { engine_image_id: image }));
    await store.write(global("b"), metaFor(global("b"), { engine_image_id: `sha256:${"8".repeat(64)}` }));
    assert.equal(await store.imageShared(image, global("a")), true);
    assert.equal(await store.imageShared(image, project("web", "a")), true);
    await store.remove(project("web", "a"));
    assert.equal(await store.imageShared(image, global("a")), false);
    assert.equal(await store.imageShared(image, project("other", "a")), true);
  });
  it("keeps a project's snapshots apart from the global ones: no project may be called 'global' or a path", async () => {
    const store = fresh();
    await store.write(global("base"), metaFor(global("base")));
    for (const bad of ["global", "../outside"]) {
      const ref = { scope: "project", project: bad, name: "base" } as const;
      await assert.rejects(store.write(ref, metaFor(ref)), { code: "PROJECT_NAME_INVALID" });
    }
    assert.equal((await store.read(global("base")))?.scope, "global");
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
