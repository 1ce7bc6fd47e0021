import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { MemoryEngine } from "../engine/testing/memory-engine.ts";
import type { Services } from "../env/services.ts";
import { isVmError } from "../errors.ts";
import type { SnapshotMetadata } from "../snapshot-file/metadata.ts";
import { imageTag, type SnapshotRef } from "../snapshot-file/names.ts";
import { SnapshotStore } from "../store/store.ts";
import { deleteSnapshot } from "./manage.ts";

const roots: string[] = [];
after(() => roots.forEach((root) => rmSync(root, { recursive: true, force: true })));

function setup(): { engine: MemoryEngine; services: Services; store: SnapshotStore } {
  const root = mkdtempSync(join(tmpdir(), "vm-manage-"));
  roots.push(root);
  const engine = new MemoryEngine();
  const store = new SnapshotStore(root);
  return { engine, store, services: { engine, snapshots: store, env: {}, extraLabels: {}, log: () => {} } };
}

function metadata(
  ref: SnapshotRef,
  engineImageId: string,
  extra: Partial<SnapshotMetadata> = {},
): SnapshotMetadata {
  return {
    format: 1,
    name: ref.name,
    scope: ref.scope,
    project: ref.scope === "project" ? ref.project : null,
    created_at: "2026-12-01T00:00:00Z",
    description: "",
    source: "committed",
    image_id: engineImageId,
    engine_image_id: engineImageId,
    image_tag: imageTag(ref),
    platform: { os: "linux", architecture: "amd64" },
    size_bytes: 0,
    languages: {},
    tools: [],
    os_packages: { manager: null, count: 0, packages: [] },
    build: {
      vm_version: "0",
      engine_version: "0",
      image_store: "classic",
      build_date: "2026-12-01T00:00:00Z",
      box: null,
      dockerfile: null,
      dockerfile_sha256: null,
      build_args: {},
    },
    git: null,
    ...extra,
  };
}

/** A snapshot image tagged as vm tags it, built on an untagged step over a tagged base, with its record. */
async function snapshotOnSteps(setupResult: ReturnType<typeof setup>, ref: SnapshotRef) {
  const { engine, store } = setupResult;
  const base = engine.addImage("base", { tags: ["busybox:latest"] });
  const step = engine.addImage("step", { parent: base });
  const image = engine.addImage(`snap-${ref.name}`, { parent: step, tags: [imageTag(ref)] });
  const record = metadata(ref, image, ref.scope === "global" ? { volumes: ["data"] } : {});
  await store.write(ref, record);
  return { base, step, image, record };
}

describe("deleteSnapshot (on an in-memory engine)", () => {
  it("removes the record, the image, its untagged build steps and its volumes, and stops at the tagged base", async () => {
    const s = setup();
    const ref: SnapshotRef = { scope: "global", name: "base" };
    const { base, step, image, record } = await snapshotOnSteps(s, ref);
    await s.engine.volumes.ensure("vm-snapshot-base-data", {});
    const result = await deleteSnapshot(s.services, ref, record, false);
    assert.deepEqual(result, { imageRemoved: true, users: [] });
    assert.equal(await s.store.read(ref), undefined);
    assert.equal(s.engine.imageRecords.has(image), false);
    assert.equal(s.engine.imageRecords.has(step), false);
    assert.equal(s.engine.imageRecords.has(base), true, "the FROM image is not the snapshot's to remove");
    assert.equal(s.engine.volumeRecords.has("vm-snapshot-base-data"), false);
  });

  it("refuses while a container uses the image, naming it, and leaves record and image in place", async () => {
    const s = setup();
    const ref: SnapshotRef = { scope: "global", name: "busy" };
    const { image, record } = await snapshotOnSteps(s, ref);
    await s.engine.addContainer("proj-dev", image);
    await assert.rejects(deleteSnapshot(s.services, ref, record, false), (error) => {
      assert.ok(isVmError(error, "SNAPSHOT_IN_USE"));
      assert.equal(error.exitCode, 5);
      assert.match(error.message, /@busy.*proj-dev/);
      return true;
    });
    assert.ok(await s.store.read(ref));
    assert.deepEqual(s.engine.imageRecords.get(image)?.tags, [imageTag(ref)]);
  });

  it("with force deletes the record and keeps the image (its tag too, as the engine refuses to untag it) for the containers that use it", async () => {
    const s = setup();
    const ref: SnapshotRef = { scope: "global", name: "forced" };
    const { image, record } = await snapshotOnSteps(s, ref);
    await s.engine.addContainer("proj-dev", image);
    const result = await deleteSnapshot(s.services, ref, record, true);
    assert.deepEqual(result, { imageRemoved: false, users: ["proj-dev"] });
    assert.equal(await s.store.read(ref), undefined);
    assert.equal(s.engine.imageRecords.has(image), true);
  });

  it("keeps an image another snapshot shares (same engine image under two names)", async () => {
    const s = setup();
    const ref: SnapshotRef = { scope: "global", name: "one" };
    const other: SnapshotRef = { scope: "project", project: "web", name: "two" };
    const { image, record } = await snapshotOnSteps(s, ref);
    await s.engine.images.tag(image, imageTag(other).split(":")[0]!, "two");
    await s.store.write(other, metadata(other, image));
    const result = await deleteSnapshot(s.services, ref, record, false);
    assert.equal(result.imageRemoved, false);
    assert.deepEqual(s.engine.imageRecords.get(image)?.tags, [imageTag(other)]);
    assert.ok(await s.store.read(other));
  });

  it("succeeds when the image is already gone from the engine", async () => {
    const s = setup();
    const ref: SnapshotRef = { scope: "project", project: "web", name: "gone" };
    const record = metadata(ref, "sha256:" + "0".repeat(64));
    await s.store.write(ref, record);
    const result = await deleteSnapshot(s.services, ref, record, false);
    assert.equal(result.imageRemoved, true);
    assert.equal(await s.store.read(ref), undefined);
  });
});
