import { readdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../lib/atomic.ts";
import { CONFIG_NAME } from "./discover.ts";
import { projectNameFromFolder } from "../lib/names.ts";

/** Writes a starter vm.yaml into `dir` (never over an existing one) and returns its path. */
export async function writeStarterConfig(dir: string): Promise<{ file: string; box: string }> {
  const name = projectNameFromFolder(dir);
  const dockerfile = readdirSync(dir).find(
    (f) => /^Dockerfile([.-].*)?$/.test(f) || f.endsWith(".dockerfile"),
  );
  const box = dockerfile ? `./${dockerfile}` : "debian:bookworm-slim";
  const text = `# vm.yaml: this project's development environment (see docs/configuration.md)
version: 1
provider: docker
project:
  name: ${name}
  workspace_path: /workspace
vm:
  # A Dockerfile ("./Dockerfile"), an image ("debian:bookworm-slim") or a snapshot ("@name")
  box: ${box}
  memory: 4gb
  cpus: 2
# ports: ["3000:3000"]
# environment:
#   NODE_ENV: development
# volumes: ["cache:/root/.cache"]
`;
  const file = join(dir, CONFIG_NAME);
  await writeFileAtomic(file, text, { exclusive: true });
  return { file, box };
}
