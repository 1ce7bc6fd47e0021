import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { LineCounter, parseDocument, type Document } from "yaml";
import type { z } from "zod";
import { ExitCode, VmError, systemErrorCode } from "../errors.ts";
import { parseBox, type BoxSpec } from "./box.ts";
import { PROJECT_NAME, configSchema, patterns, type RawConfig } from "./schema.ts";
import { memoryBytes, nanoCpus } from "./units.ts";

export interface PortSpec {
  host: number;
  container: number;
  protocol: "tcp" | "udp";
  hostIp?: string;
}

export interface VolumeSpec {
  name: string;
  target: string;
  readOnly: boolean;
}

/** A validated vm.yaml, with paths resolved against its folder. */
export interface Config {
  file: string;
  dir: string;
  version?: string;
  project: { name: string; workspacePath: string };
  box?: BoxSpec;
  memoryBytes?: number;
  nanoCpus?: number;
  user?: string;
  ports: PortSpec[];
  environment: Record<string, string>;
  volumes: VolumeSpec[];
}

const HINT =
  "Fix the lines above; the fields are described in docs/configuration.md (JSON Schema: schema/vm.schema.json)";

export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (systemErrorCode(error) === "ENOENT") {
      throw new VmError("CONFIG_NOT_FOUND", `Config file ${file} does not exist`, {
        hint: "Check the --config path, or run `vm create` in the project folder to write a starter vm.yaml",
        exitCode: ExitCode.config,
      });
    }
    throw error;
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  // `box: @vibe-base` is how the design document writes a snapshot box, but YAML reserves '@' at the start
  // of a plain scalar. The parser reports that and still reads the scalar as written, so that one error is
  // dropped and every position stays exactly where the user wrote it.
  const errors = doc.errors.filter((e) => !(e.code === "BAD_SCALAR_START" && text[e.pos[0]] === "@"));
  if (errors.length > 0) {
    const lines = errors.map((e) => {
      const { line, col } = lineCounter.linePos(e.pos[0]);
      return `  line ${line}, column ${col}: ${e.message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "")}`;
    });
    throw new VmError("CONFIG_SYNTAX", `${file} is not valid YAML:\n${lines.join("\n")}`, {
      hint: HINT,
      exitCode: ExitCode.config,
    });
  }
  const data: unknown = doc.toJS() ?? {};
  const result = configSchema.safeParse(data);
  if (!result.success) {
    const lines = result.error.issues
      .flatMap((issue) => describeIssue(issue, doc, lineCounter))
      .sort((a, b) => a.line - b.line)
      .map((l) => l.text);
    throw new VmError("CONFIG_INVALID", `${file} is invalid:\n${lines.join("\n")}`, {
      hint: HINT,
      exitCode: ExitCode.config,
    });
  }
  return normalize(result.data, file);
}

function describeIssue(
  issue: z.core.$ZodIssue,
  doc: Document,
  lineCounter: LineCounter,
): { line: number; text: string }[] {
  const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => {
      const line = lineOf(doc, lineCounter, [...path, key], true);
      return { line, text: `  ${at(line)}${fieldName([...path, key])}: unknown field` };
    });
  }
  if (issue.code === "invalid_key") {
    const key = path[path.length - 1];
    const line = lineOf(doc, lineCounter, path, true);
    const message = issue.issues[0]?.message ?? issue.message;
    return [{ line, text: `  ${at(line)}${fieldName(path)}: ${message} (got ${JSON.stringify(key)})` }];
  }
  const line = lineOf(doc, lineCounter, path, false);
  const value: unknown = path.length > 0 ? doc.getIn(path) : doc.toJS();
  const got = value === undefined ? "nothing" : JSON.stringify(value);
  const field = path.length > 0 ? fieldName(path) : "the file";
  const message = issue.message;
  return [{ line, text: `  ${at(line)}${field}: ${message} (got ${got})` }];
}

const at = (line: number) => (line > 0 ? `line ${line}, ` : "");

function lineOf(doc: Document, lineCounter: LineCounter, path: (string | number)[], keyOf: boolean): number {
  let offset: number | undefined;
  if (keyOf) {
    const parent = path.length > 1 ? doc.getIn(path.slice(0, -1), true) : doc.contents;
    const key = path[path.length - 1];
    const items = (
      parent as { items?: { key?: { value?: unknown; range?: [number, number, number] } }[] } | null
    )?.items;
    offset = items?.find((item) => item.key?.value === key)?.key?.range?.[0];
  } else {
    for (let depth = path.length; depth >= 0 && offset === undefined; depth--) {
      const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth), true);
      offset = (node as { range?: [number, number, number] } | null)?.range?.[0];
    }
  }
  return offset === undefined ? 0 : lineCounter.linePos(offset).line;
}

function fieldName(path: (string | number)[]): string {
  return path.map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? p : `.${p}`)).join("");
}

function normalize(raw: RawConfig, file: string): Config {
  const dir = dirname(file);
  const folderName = basename(dir)
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 63);
  const name = raw.project?.name ?? (PROJECT_NAME.test(folderName) ? folderName : "project");
  const config: Config = {
    file,
    dir,
    project: { name, workspacePath: raw.project?.workspace_path ?? "/workspace" },
    ports: (raw.ports ?? []).map(parsePort),
    environment: Object.fromEntries(Object.entries(raw.environment ?? {}).map(([k, v]) => [k, String(v)])),
    volumes: (raw.volumes ?? []).map(parseVolume),
  };
  if (raw.version !== undefined) config.version = String(raw.version);
  if (raw.vm?.box !== undefined) config.box = parseBox(raw.vm.box, dir, file);
  const memory = memoryBytes(raw.vm?.memory);
  if (memory !== undefined) config.memoryBytes = memory;
  const cpus = nanoCpus(raw.vm?.cpus);
  if (cpus !== undefined) config.nanoCpus = cpus;
  if (raw.vm?.user !== undefined) config.user = raw.vm.user;
  return config;
}

function parsePort(value: string): PortSpec {
  const match = patterns.PORT.exec(value)!;
  const port: PortSpec = {
    host: Number(match[2]),
    container: Number(match[3]),
    protocol: match[4] === "udp" ? "udp" : "tcp",
  };
  if (match[1]) port.hostIp = match[1];
  return port;
}

function parseVolume(value: string): VolumeSpec {
  const match = patterns.VOLUME.exec(value)!;
  return { name: match[1]!, target: match[2]!, readOnly: match[3] === "ro" };
}
