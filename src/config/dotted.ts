import { Pair, Scalar, YAMLMap, isMap, isScalar, type Node } from "yaml";
import { at, fieldName, keyValue, lineOfNode, type Problem, type YamlSource } from "./yaml-source.ts";

/**
 * Dotted keys at the top level of vm.yaml: `vm.box: "@vibe-2024-10"` sets `vm: {box: ...}`, so
 * `echo "vm.box: @x" >> vm.yaml` works whether the file has a `vm:` block or not. The document is
 * rewritten in place, each key keeping its own position, so every later error names the line it came
 * from. Only top-level keys are split; keys inside maps stay as written.
 *
 * A field set twice (nested and dotted, in either order) takes the later line's value, with a warning
 * naming both lines. A dotted key under something that is not a map (`vm: 3` and `vm.box: x`) is a
 * problem naming both lines. (The same key spelled twice stays a YAML error: uniqueKeys.)
 */
export function expandDottedKeys(
  source: YamlSource,
  label: string,
  /** The top-level fields a dotted key may start with; `my.key` under no known field stays as written. */
  sections: ReadonlySet<string>,
): { warnings: string[]; problems: Problem[] } {
  const warnings: string[] = [];
  const problems: Problem[] = [];
  const root = source.doc.contents;
  if (!isMap(root)) return { warnings, problems };
  /** Maps vm made for a dotted key's prefix (`vm` for `vm.box`), rather than written in the file. */
  const made = new WeakSet<YAMLMap>();
  const line = (node: unknown) => lineOfNode(source, node);

  const place = (map: YAMLMap, parent: string[], segments: string[], key: Scalar, value: unknown): void => {
    const [name, ...rest] = segments as [string, ...string[]];
    const path = [...parent, name];
    const existing = map.items.find((item) => keyValue(item.key) === name);
    if (rest.length > 0) {
      if (!existing || isEmpty(existing.value)) {
        const child = new YAMLMap();
        child.range = key.range;
        made.add(child);
        if (existing) existing.value = child;
        else map.items.push(new Pair(keyAt(name, key), child));
        place(child, path, rest, key, value);
      } else if (isMap(existing.value)) {
        place(existing.value, path, rest, key, value);
      } else {
        const dotted = [...path, ...rest];
        problems.push({
          line: line(key),
          text: `${at(line(key))}${fieldName(dotted)}: cannot be set, because line ${line(existing.key)} sets ${fieldName(path)} to ${show(source, existing.value)}, which is not a map`,
        });
      }
      return;
    }
    if (!existing) {
      map.items.push(new Pair(keyAt(name, key), value));
      return;
    }
    if (isMap(existing.value) && isMap(value)) {
      for (const item of value.items) {
        const itemKey = keyValue(item.key);
        if (typeof itemKey === "string" && isScalar(item.key))
          place(existing.value, path, [itemKey], item.key, item.value);
        else existing.value.items.push(item);
      }
      return;
    }
    if (isMap(existing.value) && made.has(existing.value)) {
      if (isEmpty(value)) return;
      problems.push({
        line: line(key),
        text: `${at(line(key))}${fieldName(path)}: cannot be ${show(source, value)}, because line ${line(existing.value)} sets a field inside ${fieldName(path)}, so it must be a map`,
      });
      return;
    }
    const [first, later] =
      line(existing.key) <= line(key)
        ? [
            { key: existing.key, value: existing.value },
            { key, value },
          ]
        : [
            { key, value },
            { key: existing.key, value: existing.value },
          ];
    warnings.push(
      `${label} sets ${fieldName(path)} twice: line ${line(first.key)} (${show(source, first.value)}) and line ${line(later.key)} (${show(source, later.value)}); the later one, line ${line(later.key)}, is used`,
    );
    existing.key = keyAt(name, later.key as Scalar);
    existing.value = later.value;
  };

  const items = root.items;
  root.items = [];
  for (const item of items) {
    const key = keyValue(item.key);
    if (typeof key !== "string" || !isScalar(item.key)) {
      root.items.push(item);
      continue;
    }
    const segments = key.split(".");
    const split = segments.length > 1 && segments.every((s) => s.length > 0) && sections.has(segments[0]!);
    place(root, [], split ? segments : [key], item.key, item.value);
  }
  return { warnings, problems };
}

/** A key node for `name` at the position of the key it comes from (`vm.box` gives `box` its line). */
function keyAt(name: string, from: Scalar): Scalar {
  if (from.value === name) return from;
  const key = new Scalar(name);
  key.range = from.range;
  return key;
}

/** `vm:` with nothing after it: no value yet, so a dotted key may fill it. */
function isEmpty(value: unknown): boolean {
  return value === null || value === undefined || (isScalar(value) && value.value === null);
}

/** A value as the file writes it, short: `./Dockerfile`, `@vibe-2024-10`, `{dockerfile: x}`. */
function show(source: YamlSource, value: unknown): string {
  if (isEmpty(value)) return "nothing";
  if (isScalar(value)) return value.source ?? String(value.value);
  const range = (value as Node).range;
  const text = range ? source.text.slice(range[0], range[1]).replace(/\s+/g, " ").trim() : "";
  return text.length > 40 ? `${text.slice(0, 37)}...` : text || "a value";
}
