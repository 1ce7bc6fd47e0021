import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseConfig } from "../config/load.ts";
import { Label } from "../engine/labels.ts";
import { MemoryEngine } from "../engine/testing/memory-engine.ts";
import { isVmError } from "../errors.ts";
import { destroyEnvironment, envLabels, ensureRunning, requireEnvironment } from "./environment.ts";

const config = parseConfig("project:\n  name: shop\n", "/work/shop/vm.yaml");
const project = { [Label.managed]: "true", [Label.project]: "shop" };

/** The shop project as `vm create` leaves it: a box image, a running container on it, two volumes. */
async function created(engine: MemoryEngine) {
  const base = engine.addImage("debian", { tags: ["debian:12"] });
  const box = engine.addImage("box", {
    parent: base,
    tags: ["vm-box/shop:latest"],
    labels: { ...project, [Label.role]: "box" },
  });
  for (const name of ["shop-data", "shop-cache"])
    await engine.volumes.ensure(name, { ...project, [Label.role]: "volume" });
  const id = await engine.containers.create({
    name: "shop-dev",
    image: box,
    labels: envLabels("shop"),
    env: {},
    workingDir: "/workspace",
    hostname: "shop",
    entrypoint: [],
    cmd: [],
    binds: [],
    volumes: [{ name: "shop-data", target: "/data", readOnly: false }],
    ports: [],
  });
  await engine.containers.start(id);
  return { base, box, id };
}

describe("environments (on an in-memory engine)", () => {
  it("destroy removes the container, the box image and the volumes, not the FROM image", async () => {
    const engine = new MemoryEngine();
    const { base, box } = await created(engine);
    const result = await destroyEnvironment(engine, config, { keepVolumes: false });
    assert.deepEqual(result, {
      name: "shop-dev",
      images: ["vm-box/shop:latest"],
      keptImages: [],
      volumes: ["shop-data", "shop-cache"],
      keptVolumes: [],
    });
    assert.equal(engine.containerRecords.size, 0);
    assert.equal(engine.imageRecords.has(box), false);
    assert.equal(engine.imageRecords.has(base), true);
    assert.equal(engine.volumeRecords.size, 0);
  });

  it("destroy keeps a box image a snapshot is built on, untagged, and keeps volumes when asked", async () => {
    const engine = new MemoryEngine();
    const { box } = await created(engine);
    engine.addImage("snapshot", { parent: box, tags: ["vm-snapshot/global:shop-base"] });
    const result = await destroyEnvironment(engine, config, { keepVolumes: true });
    assert.deepEqual(result.images, []);
    assert.deepEqual(result.keptImages, ["vm-box/shop:latest"]);
    assert.deepEqual(result.keptVolumes.sort(), ["shop-cache", "shop-data"]);
    assert.deepEqual(
      engine.imageRecords.get(box)?.tags,
      [],
      "the box stays only as the snapshot's untagged base",
    );
    assert.equal(engine.volumeRecords.size, 2);
  });

  it("an absent environment is ENV_NOT_FOUND (exit 4) naming the project and vm.yaml, with the command to create it", async () => {
    await assert.rejects(requireEnvironment(new MemoryEngine(), config), (error) => {
      assert.ok(isVmError(error, "ENV_NOT_FOUND"));
      assert.equal(error.exitCode, 4);
      assert.match(error.message, /'shop'.*\/work\/shop\/vm\.yaml/);
      assert.match(error.hint ?? "", /vm create/);
      return true;
    });
  });

  it("a paused environment is not running, and the hint says how to bring it back", async () => {
    const engine = new MemoryEngine();
    const { id } = await created(engine);
    await engine.containers.pause(id);
    const env = await requireEnvironment(engine, config);
    assert.throws(
      () => ensureRunning(env, config),
      (error) => {
        assert.ok(isVmError(error, "ENV_NOT_RUNNING"));
        assert.match(error.message, /is paused/);
        assert.match(error.hint ?? "", /vm restart/);
        return true;
      },
    );
  });
});
