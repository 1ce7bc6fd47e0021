import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { jsonSchema } from "./schema.ts";

interface ObjectSchema {
  type?: unknown;
  title?: unknown;
  properties?: Record<string, ObjectSchema & { anyOf?: unknown[] }>;
  additionalProperties?: unknown;
}

describe("jsonSchema", () => {
  const schema = jsonSchema() as ObjectSchema;

  it("is a closed object schema titled vm.yaml", () => {
    assert.equal(schema.type, "object");
    assert.equal(schema.title, "vm.yaml");
    assert.equal(schema.additionalProperties, false);
  });

  it("lists exactly the top-level fields of vm.yaml", () => {
    assert.deepEqual(Object.keys(schema.properties ?? {}).sort(), [
      "environment",
      "ports",
      "project",
      "provider",
      "version",
      "vm",
      "volumes",
    ]);
  });

  it("closes the vm and project sections too", () => {
    const vm = schema.properties?.vm;
    const project = schema.properties?.project;
    assert.equal(vm?.type, "object");
    assert.equal(vm?.additionalProperties, false);
    assert.deepEqual(Object.keys(vm?.properties ?? {}).sort(), ["box", "cpus", "memory", "user"]);
    assert.equal(project?.additionalProperties, false);
    assert.deepEqual(Object.keys(project?.properties ?? {}).sort(), ["name", "workspace_path"]);
  });

  it("describes ports and volumes as arrays of strings", () => {
    assert.equal(schema.properties?.ports?.type, "array");
    assert.equal(schema.properties?.volumes?.type, "array");
  });

  it("is plain JSON", () => {
    assert.deepEqual(JSON.parse(JSON.stringify(schema)), schema);
  });
});
