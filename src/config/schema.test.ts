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

  it("lists exactly the top-level fields of vm.yaml, then their dotted forms", () => {
    assert.deepEqual(Object.keys(schema.properties ?? {}), [
      "version",
      "provider",
      "project",
      "vm",
      "ports",
      "environment",
      "volumes",
      "project.name",
      "project.hostname",
      "project.workspace_path",
      "vm.box",
      "vm.box.dockerfile",
      "vm.box.context",
      "vm.box.args",
      "vm.box_name",
      "vm.memory",
      "vm.cpus",
      "vm.user",
      "vm.port_binding",
      "ports.mappings",
    ]);
  });

  it("gives a dotted form the schema of its nested field", () => {
    assert.deepEqual(schema.properties?.["vm.box"], schema.properties?.vm?.properties?.box);
    assert.deepEqual(schema.properties?.["project.name"], schema.properties?.project?.properties?.name);
  });

  it("accepts dotted keys of maps by pattern", () => {
    assert.deepEqual(Object.keys((schema as { patternProperties?: object }).patternProperties ?? {}), [
      "^vm\\.box\\.args\\.[^.]+$",
      "^environment\\.[A-Za-z_][A-Za-z0-9_]*$",
    ]);
  });

  it("closes the vm and project sections too", () => {
    const vm = schema.properties?.vm;
    const project = schema.properties?.project;
    assert.equal(vm?.type, "object");
    assert.equal(vm?.additionalProperties, false);
    assert.deepEqual(Object.keys(vm?.properties ?? {}).sort(), [
      "box",
      "box_name",
      "cpus",
      "memory",
      "port_binding",
      "user",
    ]);
    assert.equal(project?.additionalProperties, false);
    assert.deepEqual(Object.keys(project?.properties ?? {}).sort(), ["hostname", "name", "workspace_path"]);
  });

  it("describes ports as a list of strings or vm 3.x's map, and volumes as a list", () => {
    const ports = schema.properties?.ports as { anyOf?: ObjectSchema[] } | undefined;
    assert.deepEqual(
      ports?.anyOf?.map((s) => s.type),
      ["array", "object"],
    );
    assert.equal(schema.properties?.volumes?.type, "array");
  });

  it("is plain JSON", () => {
    assert.deepEqual(JSON.parse(JSON.stringify(schema)), schema);
  });
});
