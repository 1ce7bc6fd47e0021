import { docker, dockerTry, type TestEngine } from "./engines.ts";
import { FIXTURE_LABEL } from "./fixtures.ts";
import { RUN_ID, TEST_LABEL } from "./vm.ts";

/**
 * Every tag, image and volume of an engine, as `name -> id` lines, for before/after comparisons around
 * an operation that must change nothing. Test files run side by side on the same engines, so what other
 * test runs make or remove meanwhile is left out: things labelled with another run's ID, and the shared
 * fixture images (and their build steps, which inherit the fixture label). Everything else is compared:
 * this run's things and everything not made by the tests at all.
 */
export function engineState(engine: TestEngine): string[] {
  const lines: string[] = [];
  const images = docker(engine, [
    "images",
    "-a",
    "--no-trunc",
    "--format",
    "{{.ID}} {{.Repository}}:{{.Tag}}",
  ])
    .split("\n")
    .filter(Boolean)
    .map((line) => line.split(" ") as [string, string]);
  const labels = labelsOf(engine, "image", [...new Set(images.map(([id]) => id))]);
  for (const [id, tag] of images) {
    const l = labels.get(id);
    if (l === undefined || foreign(l)) continue;
    lines.push(tag === "<none>:<none>" ? `image ${id}` : `tag ${tag} -> ${id}`);
  }
  const volumes = docker(engine, ["volume", "ls", "-q"]).split("\n").filter(Boolean);
  const volumeLabels = labelsOf(engine, "volume", volumes);
  for (const name of volumes) {
    const l = volumeLabels.get(name);
    if (l !== undefined && !foreign(l)) lines.push(`volume ${name}`);
  }
  return [...new Set(lines)].sort();
}

/** Made by another test run, or a shared fixture (or a build step of one, which inherits its label). */
function foreign(labels: Record<string, string>): boolean {
  const run = labels[TEST_LABEL];
  if (run !== undefined) return run !== RUN_ID;
  return FIXTURE_LABEL in labels;
}

/** Labels of each image or volume that still exists (one may vanish while we look: it is left out). */
function labelsOf(
  engine: TestEngine,
  kind: "image" | "volume",
  ids: string[],
): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const format = kind === "image" ? "{{.Id}} {{json .Config.Labels}}" : "{{.Name}} {{json .Labels}}";
  for (let i = 0; i < ids.length; i += 50) {
    const batch = ids.slice(i, i + 50);
    const res = dockerTry(engine, [kind, "inspect", "--format", format, ...batch]);
    const text =
      res.status === 0
        ? res.stdout
        : batch.map((id) => dockerTry(engine, [kind, "inspect", "--format", format, id]).stdout).join("\n");
    for (const line of text.split("\n").filter(Boolean)) {
      const space = line.indexOf(" ");
      const parsed = JSON.parse(line.slice(space + 1)) as Record<string, string> | null;
      out.set(line.slice(0, space), parsed ?? {});
    }
  }
  return out;
}
