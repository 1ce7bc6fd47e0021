import { z } from "zod";

/**
 * The one definition of vm.yaml. Validation, the TypeScript types and the JSON Schema for editors
 * (schema/vm.schema.json, `npm run schema`) all come from here.
 */

const SIZE = /^\s*(unlimited|\d+(\.\d+)?\s*(b|k|kb|kib|m|mb|mib|g|gb|gib|t|tb|tib)?)\s*$/i;
const PORT = /^(?:(\d{1,3}(?:\.\d{1,3}){3}):)?(\d{1,5}):(\d{1,5})(?:\/(tcp|udp))?$/;
const VOLUME = /^([a-zA-Z0-9][a-zA-Z0-9_.-]*):(\/[^:]*)(?::(ro|rw))?$/;
export const PROJECT_NAME = /^[a-z0-9][a-z0-9_.-]{0,62}$/;

const MEMORY = 'expected a number of MB, a size such as "8gb" or "512mb", or "unlimited"';
const memory = z
  .union([z.number().positive({ error: MEMORY }), z.string().regex(SIZE, { error: MEMORY })], {
    error: MEMORY,
  })
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
  .union([z.string().min(1), boxObject], {
    error:
      'expected a Dockerfile path, a {dockerfile, context, args} object, "@snapshot" or an image reference',
  })
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
        .array(z.string().regex(PORT), { error: 'expected a list of "host:guest" ports, e.g. "3000:3000"' })
        .optional()
        .describe('Published ports: "host:guest", optionally "ip:host:guest" and "/udp"'),
      environment: z
        .record(
          z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/),
          z.union([z.string(), z.number(), z.boolean()]),
          {
            error: "expected a map of variable names to values",
          },
        )
        .optional()
        .describe("Environment variables in the environment"),
      volumes: z
        .array(z.string().regex(VOLUME), {
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
