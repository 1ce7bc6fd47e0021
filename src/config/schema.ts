import { z } from "zod";
import { memoryBytes } from "./units.ts";

/**
 * The one definition of vm.yaml. Validation, the TypeScript types and the JSON Schema for editors
 * (schema/vm.schema.json, `npm run schema`) all come from here.
 */

const SIZE = /^\s*(unlimited|\d+(\.\d+)?\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?)\s*$/i;
const PORT = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/;
const VOLUME = /^([a-zA-Z0-9][a-zA-Z0-9_.-]*):(\/[^:]*)(?::(ro|rw))?$/;
export const PROJECT_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;
const SNAPSHOT_BOX = /^@[a-z0-9][a-z0-9._-]{0,127}$/;
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

const MEMORY = 'expected a number of MB, a size such as "8gb" or "512mb", or "unlimited"';
const MEMORY_MIN = "expected at least 6mb, the engine's smallest memory limit";
const MIN_MEMORY_BYTES = 6 * 1024 * 1024;
const memory = z
  .union(
    [
      z.number({ error: MEMORY }).refine((mb) => mb * 1024 * 1024 >= MIN_MEMORY_BYTES, { error: MEMORY_MIN }),
      z
        .string({ error: MEMORY })
        .regex(SIZE, { error: MEMORY, abort: true })
        .refine((text) => (memoryBytes(text) ?? Infinity) >= MIN_MEMORY_BYTES, { error: MEMORY_MIN }),
    ],
    { error: MEMORY },
  )
  .describe('Memory limit: a number of MB (2048), a size ("8gb", "512mb") or "unlimited"');

const CPUS = 'expected a positive number of CPUs or "unlimited"';
const cpus = z
  .union([z.number().positive({ error: CPUS }), z.literal("unlimited", { error: CPUS })], { error: CPUS })
  .describe('CPU limit: a number of CPUs (2, 1.5) or "unlimited"');

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

const box = z
  .union(
    [
      z
        .string()
        .min(1)
        .refine((text) => !text.trim().startsWith("@") || SNAPSHOT_BOX.test(text.trim()), {
          error:
            "expected @ and a snapshot name of lowercase letters, digits, '.', '_' or '-' (max 128), such as @vibe-base",
        }),
      boxObject,
    ],
    {
      error:
        'expected a Dockerfile path, a {dockerfile, context, args} object, "@snapshot" or an image reference',
    },
  )
  .describe(
    'A Dockerfile path ("./Dockerfile.dev"), {dockerfile, context, args}, a snapshot ("@name") or an image ("debian:bookworm")',
  );

export const configSchema = z
  .strictObject(
    {
      version: z
        .union([z.string(), z.number()], { error: 'expected a version such as 1 or "1.2.1"' })
        .optional()
        .describe("Version of the vm.yaml format"),
      provider: z
        .literal("docker", { error: 'expected "docker" (the only provider)' })
        .optional()
        .describe("The container engine (docker)"),
      project: z
        .strictObject({
          name: z
            .string({ error: "expected a name" })
            .regex(PROJECT_NAME, {
              error:
                "expected lowercase letters, digits, '.', '_' or '-', starting with a letter or digit (max 63)",
            })
            .optional()
            .describe("Project name: names the environment (default: the folder's name)"),
          workspace_path: z
            .string({ error: "expected an absolute path" })
            .regex(/^\//, { error: "expected an absolute path such as /workspace" })
            .optional()
            .describe("Where the project folder is mounted in the environment (default /workspace)"),
        })
        .optional(),
      vm: z
        .strictObject({
          box: box.optional(),
          memory: memory.optional(),
          cpus: cpus.optional(),
          user: z
            .string({ error: "expected a user name or uid" })
            .min(1)
            .optional()
            .describe("User that vm exec and vm ssh run as"),
        })
        .optional(),
      ports: z
        .array(
          z
            .string({ error: PORT_MESSAGE })
            .regex(PORT, { error: PORT_MESSAGE, abort: true })
            .refine(portInRange, { error: PORT_MESSAGE }),
          {
            error: 'expected a list of "host:guest" ports, e.g. "3000:3000"',
          },
        )
        .optional()
        .describe('Published ports: "host:guest", optionally "ip:host:guest" and "/udp"'),
      environment: z
        .record(
          z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: ENV_NAME }),
          z.union([z.string(), z.number(), z.boolean()], {
            error: "expected a value: a string, number or boolean",
          }),
          {
            error: "expected a map of variable names to values",
          },
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

export function jsonSchema(): unknown {
  return { ...z.toJSONSchema(configSchema), title: "vm.yaml" };
}
