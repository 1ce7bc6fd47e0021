import { LineCounter, isMap, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { VmError } from "../errors.ts";
import { suggest } from "./suggest.ts";

/**
 * The YAML → zod → line-numbered errors machinery, shared by vm.yaml (load.ts) and settings.yaml
 * (settings.ts): a file is parsed keeping every node's position, validated against its zod schema, and
 * every problem is reported as `line N, field: what was expected (got value)`, all of them at once.
 */

/** Which file kind this is: the VmError codes (`${code}_SYNTAX`, `${code}_INVALID`) and the hint. */
export interface SourceKind {
  code: "CONFIG" | "SETTINGS";
  hint: string;
  /** Reads `box: @name` as written, though YAML reserves '@' at the start of a plain value (vm.yaml). */
  allowAt?: boolean;
}

export interface YamlSource {
  file: string;
  text: string;
  doc: Document;
  lineCounter: LineCounter;
}

/** One problem in a file: its line (0 when unknown) and its text, `line N, field: ...`. */
export interface Problem {
  line: number;
  text: string;
}

/** A path of keys and list indexes inside the file: ["vm", "box"], ["ports", 1]. */
export type FieldPath = (string | number)[];

/** Parses `text`; a file that is not YAML is a `${code}_SYNTAX` error naming each line and column. */
export function parseYamlSource(text: string, file: string, kind: SourceKind): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // `box: @vibe-base` is how the design document writes a snapshot box, but YAML reserves '@' at the start
  // of a plain scalar. The parser reports that and still reads the scalar as written, so that one error is
  // dropped and every position stays exactly where the user wrote it.
  const errors = doc.errors.filter(
    (e) => !(kind.allowAt && e.code === "BAD_SCALAR_START" && text[e.pos[0]] === "@"),
  );
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return `  line ${line}, column ${col}: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`;
    });
    throw new VmError(`${kind.code}_SYNTAX`, `${file} is not valid YAML:\n${lines.join("\n")}`, {
      hint: kind.hint,
    });
  }
  return { file, text, doc, lineCounter };
}

/** The line a node starts on (0 when it has no position). */
export function lineOfNode(source: YamlSource, node: unknown): number {
  const offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
  return offset === undefined ? 0 : source.lineCounter.linePos(offset).line;
}

/**
 * The line of a field: of its key when `keyOf` (an unknown field), else of its value, or of the nearest
 * enclosing node that has a position.
 */
export function lineOf(source: YamlSource, path: FieldPath, keyOf: boolean): number {
  const { doc } = source;
  if (keyOf) {
    const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
    const key = path[path.length - 1];
    const pair = isMap(parent) ? parent.items.find((item) => keyValue(item.key) === key) : undefined;
    return lineOfNode(source, pair?.key);
  }
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
    const line = lineOfNode(source, node);
    if (line > 0) return line;
  }
  return 0;
}

/** A key node's value: the string or number it is, whatever node kind holds it. */
export function keyValue(key: unknown): unknown {
  return key !== null && typeof key === "object" && "value" in key ? key.value : key;
}

export function fieldName(path: FieldPath): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

export const at = (line: number) => (line > 0 ? `line ${line}, ` : "");

/**
 * Validates the document's data with `schema`. Any issue, and any of `problems` found before (such as
 * conflicting dotted keys), is a `${code}_INVALID` error listing them all by line. Unknown fields get a
 * "did you mean" from `known`, the field paths the file may have.
 */
export function validate<T>(
  schema: z.ZodType<T>,
  source: YamlSource,
  kind: SourceKind,
  options: { problems?: Problem[]; known?: string[][] } = {},
): T {
  const data: unknown = source.doc.toJS() ?? {};
  const result = schema.safeParse(data);
  const problems = [...(options.problems ?? [])];
  if (!result.success) {
    for (const issue of result.error.issues)
      problems.push(...describeIssue(issue, [], source, options.known));
  }
  if (problems.length > 0 || !result.success) throw invalidFile(source.file, problems, kind);
  return result.data;
}

export function invalidFile(file: string, problems: Problem[], kind: SourceKind): VmError {
  const lines = [...problems].sort((a, b) => a.line - b.line).map((p) => `  ${p.text}`);
  return new VmError(`${kind.code}_INVALID`, `${file} is invalid:\n${lines.join("\n")}`, {
    hint: kind.hint,
  });
}

function describeIssue(
  issue: z.core.$ZodIssue,
  outer: FieldPath,
  source: YamlSource,
  known: string[][] | undefined,
): Problem[] {
  const path = [...outer, ...issue.path.filter((p): p is string | number => typeof p !== "symbol")];
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => {
      const line = lineOf(source, [...path, key], true);
      const close = known ? suggestField([...path, key], known) : undefined;
      const mean = close ? ` (did you mean ${close}?)` : "";
      return { line, text: `${at(line)}${fieldName([...path, key])}: unknown field${mean}` };
    });
  }
  if (issue.code === "invalid_key") {
    const key = path[path.length - 1];
    const line = lineOf(source, path, true);
    const message = issue.issues[0]?.message ?? issue.message;
    return [{ line, text: `${at(line)}${fieldName(path)}: ${message} (got ${JSON.stringify(key)})` }];
  }
  if (issue.code === "invalid_union") {
    // A value of the type of exactly one form (a list of ports, not a map) is told what is wrong in it.
    const fitting = issue.errors.filter(
      (errors) => !errors.every((e) => e.code === "invalid_type" && e.path.length === 0),
    );
    if (fitting.length === 1) return fitting[0]!.flatMap((e) => describeIssue(e, path, source, known));
  }
  const line = lineOf(source, path, false);
  const value: unknown = path.length > 0 ? source.doc.getIn(path) : source.doc.toJS();
  const got = value === undefined ? "nothing" : JSON.stringify(value);
  const field = path.length > 0 ? fieldName(path) : "the file";
  return [{ line, text: `${at(line)}${field}: ${issue.message} (got ${got})` }];
}

/**
 * The field an unknown one was probably meant to be, as a dotted path: a close sibling first
 * (vm.memroy → vm.memory), else a field anywhere with a close name (memroy → vm.memory, hostname →
 * project.hostname). List elements are written "[]" in `known`.
 */
export function suggestField(path: FieldPath, known: string[][]): string | undefined {
  const shape = path.map((p) => (typeof p === "number" ? "[]" : p));
  const parent = shape.slice(0, -1).join("\u0000");
  const key = String(path[path.length - 1]);
  const siblings = known.filter((k) => k.length === shape.length && k.slice(0, -1).join("\u0000") === parent);
  const sibling = suggest(
    key,
    siblings.map((k) => k[k.length - 1]!),
  );
  if (sibling) return fieldName([...path.slice(0, -1), sibling]);
  const anywhere = known.filter((k) => !k.includes("[]"));
  const exact = anywhere.find((k) => k[k.length - 1] === key);
  if (exact) return exact.join(".");
  const byName = new Map(
    anywhere.flatMap((k) => [[k[k.length - 1]!, k] as const, [k.join("."), k] as const]),
  );
  const close = suggest(key, byName.keys());
  return close ? byName.get(close)!.join(".") : undefined;
}

/**
 * The field paths of a zod schema, through optional wrappers, unions and lists ("[]"), for
 * suggestions: [["version"], ["vm"], ["vm", "box"], ["vm", "box", "dockerfile"], ...].
 */
export function schemaPaths(schema: z.ZodType): string[][] {
  const paths: string[][] = [];
  const walk = (node: unknown, prefix: string[]) => {
    const def = (node as { _zod?: { def?: Record<string, unknown> } })._zod?.def;
    if (!def) return;
    if (def.type === "object") {
      for (const [key, child] of Object.entries(def.shape as Record<string, unknown>)) {
        paths.push([...prefix, key]);
        walk(child, [...prefix, key]);
      }
    } else if (def.type === "union") {
      for (const option of def.options as unknown[]) walk(option, prefix);
    } else if (def.type === "array") {
      walk(def.element, [...prefix, "[]"]);
    } else if (def.type === "pipe") {
      walk(def.in, prefix);
    } else if ("innerType" in def) {
      walk(def.innerType, prefix);
    }
  };
  walk(schema, []);
  return paths;
}
