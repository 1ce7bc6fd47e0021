// Writes schema/vm.schema.json, the JSON Schema editors use for vm.yaml, from the one schema in src/config.
import { writeFileSync } from "node:fs";
import { jsonSchema } from "../src/config/schema.ts";

const file = new URL("../schema/vm.schema.json", import.meta.url);
writeFileSync(file, JSON.stringify(jsonSchema(), null, 2) + "\n");
console.log(`wrote ${file.pathname}`);
