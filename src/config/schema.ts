import { z } from "zod";
import {
  parseSnapshotInput,
  PROJECT_NAME,
  PROJECT_NAME_RULE,
  SNAPSHOT_NAME,
  SNAPSHOT_NAME_RULE,
} from "../lib/names.ts";
import { MEMORY_SIZE as SIZE, memoryBytes } from "../lib/units.ts";

/**
 * The one definition of vm.yaml. Validation, the TypeScript types and the JSON Schema for editors
 * (schema/vm.schema.json, `npm run schema`) all come from here.
 */

const PORT = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/;
const VOLUME = /^([a-zA-Z0-9][a-zA-Z0-9_.-]*):(\/[^:]*)(?::(ro|rw))?$/;
/** "50%": a share of the engine's memory or CPUs, as vm 3.x allowed (1% to 100%). */
export const PERCENT = /^\s*(\d{1,3})\s*%\s*$/;
const HOSTNAME = /^[a-zA-Z0-9][a-zA-Z0-9.-]{0,62}$/;
const PORT_MESSAGE =
  'expected "host:guest" with ports 1-65535, such as "3000:3000" (optionally "127.0.0.1:3000:3000" or "/udp")';
const VOLUME_MESSAGE = 'expected "name:/absolute/path" such as "cache:/home/developer/.cache"';
const ENV_NAME = "expected a variable name of letters, digits and '_', not starting with a digit";

function portInRange(value: string): boolean {
  const match = PORT.exec(value);
  if (!match) return false;
  const ports = [Number(match[2]), Number(match[3])];
  const ipOk = !match[1] || match[1].split(".").every((octet) => Number(octet) <= 255);
  return ipOk && ports.every((p) => p >= 1 && p <= 65535);
}

const MEMORY =
  'expected a number of MB, a size such as "8gb" or "512mb", a percentage such as "50%", or "unlimited"';
const MEMORY_MIN = "expected at least 6mb, the engine's smallest memory limit";
const PERCENT_RANGE = 'expected a percentage from "1%" to "100%"';
const MIN_MEMORY_BYTES = 6 * 1024 * 1024;
const percentInRange = (text: string) => {
  const value = Number(PERCENT.exec(text)?.[1] ?? 1);
  return value >= 1 && value <= 100;
};
const memory = z
  .union(
    [
      z.number({ error: MEMORY }).refine((mb) => mb * 1024 * 1024 >= MIN_MEMORY_BYTES, { error: MEMORY_MIN }),
      z
        .string({ error: MEMORY })
        .regex(new RegExp(`${SIZE.source}|${PERCENT.source}`, "i"), { error: MEMORY, abort: true })
        .refine(percentInRange, { error: PERCENT_RANGE })
        .refine((text) => PERCENT.test(text) || (memoryBytes(text) ?? Infinity) >= MIN_MEMORY_BYTES, {
          error: MEMORY_MIN,
        }),
    ],
    { error: MEMORY },
  )
  .describe(
    'Memory limit: a number of MB (2048), a size ("8gb", "512mb"), a share of the engine\'s memory ("50%") or "unlimited"',
  );

const CPUS = 'expected a positive number of CPUs, a percentage such as "75%", or "unlimited"';
const cpus = z
  .union(
    [
      z.number({ error: CPUS }).positive({ error: CPUS }),
      z.literal("unlimited", { error: CPUS }),
      z
        .string({ error: CPUS })
        .regex(PERCENT, { error: CPUS, abort: true })
        .refine(percentInRange, { error: PERCENT_RANGE }),
    ],
    { error: CPUS },
  )
  .describe(
    'CPU limit: a number of CPUs (2, 1.5), a share of the engine\'s CPUs ("75%", at least 1) or "unlimited"',
  );

const boxObject = z
  .strictObject({
    dockerfile: z
      .string({ error: "expected the path of a Dockerfile" })
      .min(1)
      .describe("Path of the Dockerfile, relative to vm.yaml"),
    context: z
      .string({ error: "expected a folder path" })
      .optional()
      .describe("Build context folder, relative to vm.yaml (default: the Dockerfile's folder)"),
    args: z
      .record(z.string(), z.union([z.string(), z.number(), z.boolean()]), {
        error: "expected a map of build arguments",
      })
      .optional()
      .describe("Build arguments (ARG values)"),
  })
  .describe("Build the box from a Dockerfile");

const BOX_STRING = `expected @ and a snapshot name of ${SNAPSHOT_NAME_RULE}, such as @vibe-base (or @ and a registry reference, such as @ghcr.io/acme/vibe:2024-10)`;
const boxString = z
  .string()
  .min(1)
  .refine(
    (text) => {
      const snapshot = parseSnapshotInput(text.trim());
      // A "/" makes it a registry reference (registry/repository:tag), checked when it is pulled.
      return (
        !snapshot.global ||
        SNAPSHOT_NAME.test(snapshot.name) ||
        /^[^\s@/]+(\/[^\s@/]+)+(@sha256:[0-9a-f]{64})?$/.test(snapshot.name)
      );
    },
    { error: BOX_STRING },
  );

const box = z
  .union([boxString, boxObject], {
    error:
      'expected a Dockerfile path, a {dockerfile, context, args} object, "@snapshot" or an image reference',
  })
  .describe(
    'A Dockerfile path ("./Dockerfile.dev"), {dockerfile, context, args}, a snapshot ("@name"), a snapshot in a registry ("@ghcr.io/acme/vibe:2024-10") or an image ("debian:bookworm")',
  );

const USER = "expected a user name or uid";

const PROVIDER = (input: unknown) =>
  input === "vagrant" || input === "tart"
    ? `vm runs environments on Docker only; vm 3.x's ${input} provider is not supported (write provider: docker, and a Docker image, Dockerfile or snapshot as vm.box)`
    : 'expected "docker": vm runs environments on Docker only';

const portList = z.array(
  z
    .string({ error: PORT_MESSAGE })
    .regex(PORT, { error: PORT_MESSAGE, abort: true })
    .refine(portInRange, { error: PORT_MESSAGE }),
  { error: 'expected a list of "host:guest" ports, e.g. "3000:3000"' },
);

const PORT_NUMBER = "expected a port number from 1 to 65535";
const portNumber = z.number({ error: PORT_NUMBER }).int({ error: PORT_NUMBER }).min(1).max(65535);
/** vm 3.x's `ports: {_range: [a, b], mappings: [...]}`; `_range` and named ports are dropped (legacy.ts). */
const portMap = z
  .strictObject(
    {
      mappings: z
        .array(
          z.strictObject({
            host: portNumber.describe("Port on the host"),
            guest: portNumber.describe("Port in the environment"),
            protocol: z.enum(["tcp", "udp"], { error: 'expected "tcp" or "udp"' }).optional(),
          }),
          { error: "expected a list of {host, guest, protocol} mappings" },
        )
        .optional()
        .describe("Published ports as {host, guest, protocol} (the vm 3.x form)"),
    },
    { error: "expected a list of ports or {mappings: [...]}" },
  )
  .describe("The vm 3.x form: {mappings: [{host: 8080, guest: 80, protocol: tcp}]}");

export const configSchema = z
  .strictObject(
    {
      version: z
        .union([z.string(), z.number(), z.boolean()], { error: 'expected a version such as 1 or "1.2.1"' })
        .optional()
        .describe("Version of the vm.yaml format (kept as written)"),
      provider: z
        .literal("docker", { error: (issue) => PROVIDER(issue.input) })
        .optional()
        .describe("The container engine (docker)"),
      project: z
        .strictObject(
          {
            name: z
              .string({ error: "expected a name" })
              .regex(PROJECT_NAME, { error: `expected ${PROJECT_NAME_RULE}` })
              .optional()
              .describe("Project name: names the environment (default: the folder's name)"),
            hostname: z
              .string({ error: "expected a host name" })
              .regex(HOSTNAME, {
                error: "expected a host name of letters, digits, '.' and '-', such as dev.app.local",
              })
              .optional()
              .describe("Host name inside the environment (default: the project name)"),
            workspace_path: z
              .string({ error: "expected an absolute path" })
              .regex(/^\//, { error: "expected an absolute path such as /workspace" })
              .optional()
              .describe("Where the project folder is mounted in the environment (default /workspace)"),
          },
          { error: "expected a map of fields (name, hostname, workspace_path)" },
        )
        .optional(),
      vm: z
        .strictObject(
          {
            box: box.optional(),
            box_name: boxString
              .optional()
              .meta({ deprecated: true })
              .describe("Deprecated (vm 3.x): the same as vm.box, used when vm.box is not set"),
            memory: memory.optional(),
            cpus: cpus.optional(),
            user: z
              .union([z.string().min(1, { error: USER }), z.number().int().nonnegative()], { error: USER })
              .optional()
              .describe("User that vm exec and vm ssh run as"),
            port_binding: z
              .enum(["127.0.0.1", "0.0.0.0"], { error: 'expected "127.0.0.1" or "0.0.0.0"' })
              .optional()
              .describe(
                'Host address for ports that name none: "127.0.0.1" (this machine only) or "0.0.0.0" (every interface, the default)',
              ),
          },
          { error: "expected a map of fields (box, memory, cpus, user, port_binding)" },
        )
        .optional(),
      ports: z
        .union([portList, portMap], {
          error: 'expected a list of "host:guest" ports, e.g. "3000:3000", or {mappings: [...]}',
        })
        .optional()
        .describe('Published ports: "host:guest", optionally "ip:host:guest" and "/udp"'),
      environment: z
        .record(
          z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: ENV_NAME }),
          z.union([z.string(), z.number(), z.boolean()], {
            error: "expected a value: a string, number or boolean",
          }),
          { error: "expected a map of variable names to values" },
        )
        .optional()
        .describe("Environment variables in the environment"),
      volumes: z
        .array(z.string({ error: VOLUME_MESSAGE }).regex(VOLUME, { error: VOLUME_MESSAGE }), {
          error: 'expected a list of named volumes, e.g. "cache:/home/developer/.cache"',
        })
        .optional()
        .describe('Named volumes that outlive re-creation: "name:/path[:ro]"'),
    },
    { error: "expected a mapping of fields (version, provider, project, vm, ports, environment, volumes)" },
  )
  .describe("vm.yaml: a container-based development environment");

export type RawConfig = z.infer<typeof configSchema>;
export type RawBox = NonNullable<NonNullable<RawConfig["vm"]>["box"]>;

export const patterns = { SIZE, PORT, VOLUME };

interface JsonNode {
  properties?: Record<string, JsonNode>;
  anyOf?: JsonNode[];
  additionalProperties?: unknown;
  propertyNames?: { pattern?: string };
  [key: string]: unknown;
}

/**
 * The JSON Schema for editors. Besides the nested form it lists every dotted form vm accepts at the top
 * level ("vm.box", "project.name", "vm.box.dockerfile", ...), generated from the nested schema, and
 * patterns for the dotted keys of maps ("environment.NODE_ENV").
 */
export function jsonSchema(): unknown {
  const schema = z.toJSONSchema(configSchema) as JsonNode;
  const dotted: Record<string, JsonNode> = {};
  const patternProperties: Record<string, unknown> = {};
  const walk = (prefix: string, node: JsonNode) => {
    for (const option of [node, ...(node.anyOf ?? [])]) {
      for (const [key, sub] of Object.entries(option.properties ?? {})) {
        dotted[`${prefix}.${key}`] = sub;
        walk(`${prefix}.${key}`, sub);
      }
      if (typeof option.additionalProperties === "object") {
        const names = option.propertyNames?.pattern?.replace(/^\^/, "").replace(/\$$/, "") ?? "[^.]+";
        patternProperties[`^${prefix.replaceAll(".", "\\.")}\\.${names}$`] = option.additionalProperties;
      }
    }
  };
  for (const [key, sub] of Object.entries(schema.properties ?? {})) walk(key, sub);
  return {
    ...schema,
    properties: { ...schema.properties, ...dotted },
    patternProperties,
    title: "vm.yaml",
  };
}
