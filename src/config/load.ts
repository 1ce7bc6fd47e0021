import { readFile } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { isMap, isScalar } from "yaml";
import { VmError, systemErrorCode } from "../errors.ts";
import { parseBox, type BoxSpec } from "./box.ts";
import { expandDottedKeys } from "./dotted.ts";
import { IGNORED_FIELDS, dropIgnoredFields } from "./legacy.ts";
import { PERCENT, configSchema, patterns, type RawConfig } from "./schema.ts";
import { projectNameFromFolder } from "../lib/names.ts";
import { memoryBytes, nanoCpus } from "../lib/units.ts";
import {
  lineOf,
  parseYamlSource,
  schemaPaths,
  validate,
  type SourceKind,
  type YamlSource,
} from "./yaml-source.ts";

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
  project: { name: string; workspacePath: string; hostname?: string };
  box?: BoxSpec;
  memoryBytes?: number;
  /** vm.memory as "50%": a share of the engine's memory, resolved when the environment is created. */
  memoryPercent?: number;
  nanoCpus?: number;
  /** vm.cpus as "75%": a share of the engine's CPUs (at least 1), resolved when it is created. */
  cpusPercent?: number;
  user?: string;
  ports: PortSpec[];
  environment: Record<string, string>;
  volumes: VolumeSpec[];
  /** What the file does that works but deserves a word (each printed once as "Warning: ...\n"). */
  warnings: string[];
}

const HINT =
  "Fix the lines above; the fields are described in docs/configuration.md (JSON Schema: schema/vm.schema.json)";
const KIND: SourceKind = { code: "CONFIG", hint: HINT, allowAt: true };
/** Every field vm.yaml may have (for "did you mean"), the ignored vm 3.x ones included. */
const KNOWN = [...schemaPaths(configSchema), ...IGNORED_FIELDS.map((f) => f.path)];
/** Top-level fields, which a dotted key (`vm.box`) may start with. */
const SECTIONS = new Set(KNOWN.filter((p) => p.length === 1).map((p) => p[0]!));
/** Values kept as written, as vm 3.x kept them: `version: 1.10` is "1.10", not 1.1. */
const TEXT_FIELDS = [["version"], ["project", "name"], ["project", "hostname"], ["vm", "user"]];
const TEXT_MAPS = [["environment"], ["vm", "box", "args"]];

/** How a command prints a config's warnings on stderr, each once. */
export function formatWarnings(config: Pick<Config, "warnings">): string {
  return config.warnings.map((w) => `Warning: ${w}\n`).join("");
}

export async function loadConfig(file: string): Promise<Config> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (error) {
    if (systemErrorCode(error) === "ENOENT") {
      throw new VmError("CONFIG_NOT_FOUND", `Config file ${file} does not exist`, {
        hint: "Check the --config path, or run `vm create` in the project folder to write a starter vm.yaml",
      });
    }
    throw error;
  }
  return parseConfig(text, file);
}

export function parseConfig(text: string, file: string): Config {
  const source = parseYamlSource(text, file, KIND);
  const label = basename(file);
  const dotted = expandDottedKeys(source, label, SECTIONS);
  const ignored = dropIgnoredFields(source, label);
  keepText(source);
  const raw = validate(configSchema, source, KIND, { problems: dotted.problems, known: KNOWN });
  const config = normalize(raw, file);
  config.warnings = [
    ...dotted.warnings,
    ...(ignored ? [ignored] : []),
    ...boxNameWarnings(raw, source, label),
  ];
  return config;
}

function keepText(source: YamlSource): void {
  const asText = (node: unknown) => {
    if (
      isScalar(node) &&
      (typeof node.value === "number" || typeof node.value === "boolean") &&
      node.source
    ) {
      node.value = node.source;
    }
  };
  for (const path of TEXT_FIELDS) asText(source.doc.getIn(path, true));
  for (const path of TEXT_MAPS) {
    const map = source.doc.getIn(path, true);
    if (isMap(map)) for (const item of map.items) asText(item.value);
  }
}

function boxNameWarnings(raw: RawConfig, source: YamlSource, label: string): string[] {
  if (raw.vm?.box_name === undefined) return [];
  const line = lineOf(source, ["vm", "box_name"], true);
  if (raw.vm.box === undefined) {
    return [
      `${label} line ${line}: vm.box_name is deprecated (vm 3.x); it is used as vm.box, so rename it to vm.box`,
    ];
  }
  const boxLine = lineOf(source, ["vm", "box"], true);
  return [
    `${label} line ${line}: vm.box_name is deprecated (vm 3.x) and ignored, because vm.box is set (line ${boxLine})`,
  ];
}

function normalize(raw: RawConfig, file: string): Config {
  const dir = dirname(file);
  const name = raw.project?.name ?? projectNameFromFolder(dir);
  const ports = Array.isArray(raw.ports)
    ? raw.ports.map(parsePort)
    : (raw.ports?.mappings ?? []).map((m): PortSpec => ({
        host: m.host,
        container: m.guest,
        protocol: m.protocol ?? "tcp",
      }));
  if (raw.vm?.port_binding === "127.0.0.1") for (const port of ports) port.hostIp ??= "127.0.0.1";
  const config: Config = {
    file,
    dir,
    project: { name, workspacePath: raw.project?.workspace_path ?? "/workspace" },
    ports,
    environment: Object.fromEntries(Object.entries(raw.environment ?? {}).map(([k, v]) => [k, String(v)])),
    volumes: (raw.volumes ?? []).map(parseVolume),
    warnings: [],
  };
  if (raw.project?.hostname !== undefined) config.project.hostname = raw.project.hostname;
  if (raw.version !== undefined) config.version = String(raw.version);
  const box = raw.vm?.box ?? raw.vm?.box_name;
  if (box !== undefined) config.box = parseBox(box, dir, file);
  const memory = raw.vm?.memory;
  const memoryShare = typeof memory === "string" ? PERCENT.exec(memory) : null;
  if (memoryShare) config.memoryPercent = Number(memoryShare[1]);
  else {
    const bytes = memoryBytes(memory);
    if (bytes !== undefined) config.memoryBytes = bytes;
  }
  const cpus = raw.vm?.cpus;
  const cpuShare = typeof cpus === "string" ? PERCENT.exec(cpus) : null;
  if (cpuShare) config.cpusPercent = Number(cpuShare[1]);
  else {
    const nano = nanoCpus(cpus as number | "unlimited" | undefined);
    if (nano !== undefined) config.nanoCpus = nano;
  }
  if (raw.vm?.user !== undefined) config.user = String(raw.vm.user);
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
