import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { MemoryEngine } from "../engine/testing/memory-engine.ts";
import { ExitCode } from "../errors.ts";
import type { SnapshotMetadata } from "../snapshot-file/metadata.ts";
import type { SnapshotRef } from "../snapshot-file/names.ts";
import { rejectsVm, checkVmError } from "../snapshot-file/testing/assert.ts";
import { sampleMetadata, tempDir } from "../snapshot-file/testing/snapshot.ts";
import { findSnapshot, resolveSnapshotImage, snapshotImageMissing, snapshotNotFound } from "./resolve.ts";
import { SnapshotStore } from "./store.ts";

const metaFor = (ref: SnapshotRef, fields: Partial<SnapshotMetadata> = {}): SnapshotMetadata =>
  sampleMetadata({
    name: ref.name,
    scope: ref.scope,
    project: ref.scope === "project" ? ref.project : null,
    description: ref.scope === "global" ? `global ${ref.name}` : `${ref.project} ${ref.name}`,
    ...fields,
  });

describe("findSnapshot: which snapshot a name means", () => {
  let dir: string;
  let remove: () => Promise<void>;
  let store: SnapshotStore;
  before(async () => {
    ({ dir, remove } = await tempDir("vm-resolve-test-"));
    store = new SnapshotStore(join(dir, "vm", "snapshots"));
    const refs: SnapshotRef[] = [
      { scope: "global", name: "base" },
      { scope: "project", project: "web", name: "base" },
      { scope: "project", project: "web", name: "only-web" },
      { scope: "project", project: "web", name: "shared" },
      { scope: "project", project: "api", name: "shared" },
    ];
    for (const ref of refs) await store.write(ref, metaFor(ref));
  });
  after(() => remove());
  const find = (input: string, project?: string, log?: (t: string) => void) =>
    findSnapshot(store, input, project, log);

  it("@name is always the global snapshot, even in a project that has its own", async () => {
    const { ref, metadata } = await find("@base", "web");
    assert.deepEqual(ref, { scope: "global", name: "base" });
    assert.equal(metadata.description, "global base");
  });

  it("a plain name is the project's snapshot when the project has one, else the global one", async () => {
    assert.deepEqual((await find("base", "web")).ref, { scope: "project", project: "web", name: "base" });
    assert.deepEqual((await find("base", "api")).ref, { scope: "global", name: "base" });
    assert.deepEqual((await find("base")).ref, { scope: "global", name: "base" });
  });

  it("with no project in context, a plain name is the one project snapshot of that name, and says so", async () => {
    const logged: string[] = [];
    const { ref } = await find("only-web", undefined, (t) => logged.push(t));
    assert.deepEqual(ref, { scope: "project", project: "web", name: "only-web" });
    assert.deepEqual(logged, [
      "Using snapshot 'only-web' of project 'web' (the only snapshot of that name)\n",
    ]);
  });

  it("refuses a name several projects have, listing each with its --project", async () => {
    const error = await rejectsVm(find("shared"), {
      code: "SNAPSHOT_AMBIGUOUS",
      exitCode: ExitCode.usage,
      message: [
        /^Several projects have a snapshot named 'shared':/,
        /shared \(project api\): --project api/,
        /shared \(project web\): --project web/,
      ],
    });
    assert.match(error.hint!, /--project NAME/);
  });

  it("says where a snapshot is when the name given does not reach it", async () => {
    const error = await rejectsVm(find("@only-web"), {
      code: "SNAPSHOT_NOT_FOUND",
      exitCode: ExitCode.notFound,
      message:
        /^Snapshot '@only-web' not found among the global snapshots; there is only-web \(project web\)$/,
    });
    assert.match(error.hint!, /--project web/);
    await rejectsVm(find("only-web", "api"), {
      code: "SNAPSHOT_NOT_FOUND",
      exitCode: ExitCode.notFound,
      message:
        /^Snapshot 'only-web' not found in this project or among the global ones; there is only-web \(project web\)$/,
    });
  });

  it("refuses a name that is nowhere, saying how to import it", async () => {
    const error = await rejectsVm(find("nowhere"), {
      code: "SNAPSHOT_NOT_FOUND",
      exitCode: ExitCode.notFound,
      message: /^Snapshot '@nowhere' not found\. Import it first with: vm snapshot import <file>$/,
    });
    assert.match(error.hint!, /vm snapshot import/);
  });

  it("refuses a name that is not a snapshot name before touching the store", async () => {
    for (const input of ["../etc", "@../etc", "Upper", "@", "a/b", ""]) {
      await rejectsVm(find(input, "web"), {
        code: "SNAPSHOT_NAME_INVALID",
        exitCode: ExitCode.usage,
        message: /is not a valid snapshot name$/,
      });
    }
  });
});

describe("snapshot errors and images", () => {
  let dir: string;
  let remove: () => Promise<void>;
  before(async () => ({ dir, remove } = await tempDir("vm-resolve-test-")));
  after(() => remove());

  it("snapshotNotFound names the snapshot the same way with or without @", () => {
    for (const input of ["x", "@x"])
      checkVmError(snapshotNotFound(input), {
        code: "SNAPSHOT_NOT_FOUND",
        exitCode: ExitCode.notFound,
        message: /^Snapshot '@x' not found/,
      });
  });

  it("snapshotImageMissing names the snapshot, its tag and its image, and how to repair it", () => {
    const ref: SnapshotRef = { scope: "project", project: "web", name: "base" };
    const error = checkVmError(snapshotImageMissing(ref, metaFor(ref)), {
      code: "SNAPSHOT_IMAGE_MISSING",
      exitCode: ExitCode.notFound,
      message:
        /^Snapshot base \(project web\) is registered, but the engine no longer has its image vm-snapshot\/global:vibe-base \(sha256:111111111111\)$/,
    });
    assert.match(error.hint!, /vm snapshot delete base$/);
  });

  it("resolveSnapshotImage uses the tag while it points at the snapshot's image, else the image ID", async () => {
    const store = new SnapshotStore(join(dir, "a", "snapshots"));
    const engine = new MemoryEngine();
    const ref: SnapshotRef = { scope: "global", name: "base" };
    const id = engine.addImage("base-image", { tags: ["vm-snapshot/global:base"] });
    await store.write(
      ref,
      metaFor(ref, { engine_image_id: id, image_tag: "vm-snapshot/global:base", volumes: ["data"] }),
    );
    assert.deepEqual(await resolveSnapshotImage(engine, store, ref), {
      image: "vm-snapshot/global:base",
      imageId: id,
      description: "snapshot @base",
      snapshot: { name: "base", volumes: ["data"] },
    });
    // The tag moved to another image: the snapshot is still its own image, by ID.
    engine.addImage("other", { tags: ["vm-snapshot/global:base"] });
    assert.equal((await resolveSnapshotImage(engine, store, ref)).image, id);
  });

  it("resolveSnapshotImage refuses a snapshot that is not registered, or whose image is gone", async () => {
    const store = new SnapshotStore(join(dir, "b", "snapshots"));
    const engine = new MemoryEngine();
    const ref: SnapshotRef = { scope: "global", name: "base" };
    await rejectsVm(resolveSnapshotImage(engine, store, ref), {
      code: "SNAPSHOT_NOT_FOUND",
      exitCode: ExitCode.notFound,
      message: /'@base' not found/,
    });
    await store.write(ref, metaFor(ref, { engine_image_id: `sha256:${"4".repeat(64)}` }));
    await rejectsVm(resolveSnapshotImage(engine, store, ref), {
      code: "SNAPSHOT_IMAGE_MISSING",
      exitCode: ExitCode.notFound,
      message: /^Snapshot @base is registered, but the engine no longer has its image/,
    });
  });
});
