import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { jsonSchema } from "./schema.ts";

it("schema/vm.schema.json matches the schema in src/config (run `npm run schema` after changing it)", () => {
  const file = JSON.parse(
    readFileSync(new URL("../../schema/vm.schema.json", import.meta.url), "utf8"),
  ) as unknown;
  assert.deepEqual(file, jsonSchema());
});
