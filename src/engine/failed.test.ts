import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { VmError } from "../errors.ts";
import { FailedEngine } from "./failed.ts";

describe("FailedEngine", () => {
  it("answers every call of every client with the reason it could not be built", async () => {
    const reason = new VmError("ENGINE_UNAVAILABLE", "DOCKER_HOST 'ssh://x' cannot be used");
    const engine = new FailedEngine(reason, { url: "ssh://x", source: "DOCKER_HOST" });
    const clients = { images: engine.images, containers: engine.containers, volumes: engine.volumes };
    let methods = 0;
    for (const [name, client] of Object.entries(clients)) {
      for (const [method, call] of Object.entries(
        client as unknown as Record<string, () => Promise<unknown>>,
      )) {
        await assert.rejects(call(), (error) => error === reason, `${name}.${method}`);
        methods++;
      }
    }
    assert.equal(methods, 29);
    await assert.rejects(engine.info(), (error) => error === reason);
    assert.equal(engine.endpoint.url, "ssh://x");
    assert.doesNotThrow(() => engine.close());
  });

  it("wraps a reason that is not an Error", async () => {
    const engine = new FailedEngine("no engine", { url: "", source: "DOCKER_HOST" });
    await assert.rejects(engine.images.list({}), { message: "no engine" });
  });
});
