// The layers of src/ and the arrows allowed between them, enforced by `eslint .` (so by `npm test`).
// A module is a top-level folder of src/ (or one of its listed sub-folders, or a file at src/'s root);
// a module may import itself and what its entry lists, nothing else. The table is checked for cycles
// when it loads, so an arrow that would close a loop cannot be added here either.
// docs/architecture.md describes each module; keep the two in step.
import path from "node:path";

const base = ["errors", "lib"];

/** module → the modules it may import. */
export const layers = {
  errors: [],
  version: [],
  lib: ["errors"],
  config: [...base],
  engine: [...base],
  "engine/transport": [...base, "engine"],
  "engine/docker": [...base, "engine", "engine/transport"],
  "snapshot-file": [...base, "config", "version", "remote"],
  "secret-scan": [...base],
  registry: [...base],
  remote: [...base],
  store: [...base, "config", "engine", "snapshot-file"],
  "env/build": [...base, "config"],
  env: [...base, "config", "engine", "store", "env/build"],
  snapshot: [...base, "config", "engine", "store", "env", "snapshot-file", "version"],
  "snapshot/create": [
    ...base,
    "config",
    "engine",
    "store",
    "env",
    "env/build",
    "snapshot",
    "snapshot-file",
    "version",
  ],
  "snapshot/transfer": [
    ...base,
    "config",
    "engine",
    "store",
    "env",
    "snapshot",
    "snapshot-file",
    "secret-scan",
    "remote",
    "version",
  ],
  "snapshot/registry": [
    ...base,
    "config",
    "engine",
    "store",
    "env",
    "registry",
    "snapshot",
    "snapshot/transfer",
    "snapshot-file",
    "version",
  ],
  cli: [...base, "config", "engine", "store", "env", "version"],
  "commands/snapshot": [
    ...base,
    "cli",
    "config",
    "store",
    "env",
    "snapshot",
    "snapshot/create",
    "snapshot/transfer",
    "snapshot/registry",
    "snapshot-file",
    "secret-scan",
    "registry",
  ],
  commands: [
    ...base,
    "cli",
    "config",
    "store",
    "env",
    "snapshot",
    "snapshot/create",
    "snapshot-file",
    "commands/snapshot",
  ],
  main: [
    ...base,
    "cli",
    "commands",
    "engine",
    "engine/docker",
    "engine/transport",
    "env",
    "snapshot/registry",
  ],
  bin: ["cli", "main"],
};

/** The module a file under src/ belongs to: the deepest listed folder that holds it, or its root file's name. */
export function moduleOf(relative) {
  const parts = relative.split(path.sep);
  if (parts.length === 1) return parts[0].replace(/\.ts$/, "");
  for (let depth = parts.length - 1; depth >= 1; depth--) {
    const candidate = parts.slice(0, depth).join("/");
    if (candidate in layers) return candidate;
  }
  return parts[0];
}

/** A cycle in the table, as a list of modules, or undefined. */
export function findCycle(table) {
  const state = new Map();
  const stack = [];
  const visit = (node) => {
    if (state.get(node) === "done") return undefined;
    if (state.get(node) === "open") return [...stack.slice(stack.indexOf(node)), node];
    state.set(node, "open");
    stack.push(node);
    for (const next of table[node] ?? []) {
      const cycle = visit(next);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(node, "done");
    return undefined;
  };
  for (const node of Object.keys(table)) {
    const cycle = visit(node);
    if (cycle) return cycle;
  }
  return undefined;
}

const cycle = findCycle(layers);
if (cycle) throw new Error(`scripts/layers.js: the allowed imports form a cycle: ${cycle.join(" -> ")}`);

/** The ESLint rule: every relative import of a src/ file (tests beside the code excepted) follows the table. */
const rule = {
  meta: {
    type: "problem",
    docs: { description: "imports between src/ folders follow the layers in scripts/layers.js" },
    schema: [],
    messages: {
      forbidden:
        "{{from}} may not import {{to}} (allowed: {{allowed}}); see scripts/layers.js and docs/architecture.md",
      unknown: "{{from}} is not a module scripts/layers.js knows; add it there and to docs/architecture.md",
    },
  },
  create(context) {
    const src = path.join(context.cwd, "src");
    const file = context.filename;
    const relative = path.relative(src, file);
    if (relative.startsWith("..") || file.endsWith(".test.ts")) return {};
    const from = moduleOf(relative);
    const check = (node, specifier) => {
      if (typeof specifier !== "string" || !specifier.startsWith(".")) return;
      const target = path.relative(src, path.resolve(path.dirname(file), specifier));
      if (target.startsWith("..")) return;
      const to = moduleOf(target);
      if (to === from) return;
      const allowed = layers[from];
      if (!allowed) {
        context.report({ node, messageId: "unknown", data: { from } });
        return;
      }
      if (!allowed.includes(to))
        context.report({
          node,
          messageId: "forbidden",
          data: { from, to, allowed: allowed.join(", ") || "nothing" },
        });
    };
    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) => node.source.type === "Literal" && check(node.source, node.source.value),
    };
  },
};

export const layersPlugin = { rules: { layers: rule } };
