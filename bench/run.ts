// `npm run bench`: measures vm against the plain engine pipelines in the same run. See docs/performance.md.
import { spawnSync, type SpawnSyncOptions } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { performance } from "node:perf_hooks";
import { ensureImages, ensureLarge } from "./images.ts";
import { join, resolve } from "node:path";
import { alternate, fmt, run, timed, type MemoryRow, type Row, type Stats } from "./lib.ts";
import { benchRegistry } from "./registry.ts";
import { benchS3 } from "./s3.ts";
import { removeLabelledImages, SECOND_ENGINE, secondEngineUp } from "./processes.ts";

const REPO = resolve(import.meta.dirname, "..");
const VM = join(REPO, "bin/vm");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const LABEL = "dev.vm.bench=1";

const rows: Row[] = [];
const home = mkdtempSync(join(tmpdir(), "vm-bench-home-"));
const env = { ...process.env, XDG_CONFIG_HOME: home, VM_LABELS: LABEL };

function cleanup(): void {
  for (const kind of [
    ["ps", "-aq"],
    ["images", "-q"],
  ] as const) {
    const ids = run("docker", [...kind, "--filter", `label=${LABEL}`])
      .split("\n")
      .filter(Boolean);
    if (ids.length) run("docker", kind[0] === "ps" ? ["rm", "-f", ...ids] : ["rmi", "-f", ...new Set(ids)]);
  }
}

function benchStartup(): void {
  const stats = alternate(ROUNDS, [
    { name: "vm --version", measure: () => timed(VM, ["--version"]) },
    { name: "node -e 0", measure: () => timed(join(REPO, "node_modules/.bin/node"), ["-e", "0"]) },
  ]);
  rows.push({
    name: "start-up: vm --version",
    vm: stats["vm --version"]!,
    baseline: stats["node -e 0"]!,
    baselineName: "node -e 0",
  });
}

function benchCreate(): void {
  const project = mkdtempSync(join(tmpdir(), "vm-bench-"));
  try {
    writeFileSync(join(project, "busybox"), "");
    rmSync(join(project, "busybox"));
    run("cp", ["/bin/busybox", join(project, "busybox")]);
    writeFileSync(
      join(project, "Dockerfile"),
      'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n',
    );
    run(VM, ["create", "--save-as", "@bench-create", "--from-dockerfile", "Dockerfile", "--force"], {
      cwd: project,
      env,
    });
    const box = mkdtempSync(join(tmpdir(), "vm-bench-box-"));
    mkdirSync(box, { recursive: true });
    writeFileSync(join(box, "vm.yaml"), "project:\n  name: bench-create\nvm:\n  box: '@bench-create'\n");
    const stats = alternate(ROUNDS, [
      {
        name: "vm create (@snapshot)",
        measure: () => timed(VM, ["create"], { cwd: box, env }),
        after: () => run(VM, ["destroy", "--force"], { cwd: box, env }),
      },
      {
        name: "docker run -d",
        measure: () =>
          timed("docker", [
            "run",
            "-d",
            "--init",
            "--name",
            "bench-docker-run",
            "--label",
            LABEL,
            "vm-snapshot/global:bench-create",
            "sleep",
            "infinity",
          ]),
        after: () => run("docker", ["rm", "-f", "bench-docker-run"]),
      },
    ]);
    rows.push({
      name: "create from @snapshot",
      vm: stats["vm create (@snapshot)"]!,
      baseline: stats["docker run -d"]!,
      baselineName: "docker run -d",
      target: 1.5,
    });
    run(VM, ["snapshot", "delete", "@bench-create", "--force"], { env });
    rmSync(box, { recursive: true, force: true });
  } finally {
    rmSync(project, { recursive: true, force: true });
  }
}

interface SizeRow {
  name: string;
  bytes: number;
}
const sizes: SizeRow[] = [];
const memory: MemoryRow[] = [];
const has = (cmd: string) => spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;

/** Wall time and peak RSS (KiB, from GNU time) of one command. */
function timedRss(
  cmd: string,
  args: string[],
  options: SpawnSyncOptions = {},
): { seconds: number; rssKb: number } {
  const start = performance.now();
  const res = spawnSync("/usr/bin/time", ["-f", "%M", cmd, ...args], {
    stdio: ["ignore", "ignore", "pipe"],
    encoding: "utf8",
    ...options,
  });
  const seconds = (performance.now() - start) / 1000;
  if (res.status !== 0)
    throw new Error(`${cmd} ${args.join(" ")} failed: ${String(res.stderr).slice(-2000)}`);
  const lines = String(res.stderr).trim().split("\n");
  return { seconds, rssKb: Number(lines[lines.length - 1]) };
}

function saveSnapshot(image: string, name: string): void {
  const dir = mkdtempSync(join(tmpdir(), "vm-bench-df-"));
  writeFileSync(join(dir, "Dockerfile"), `FROM ${image}\n`);
  run(VM, ["create", "--save-as", `@${name}`, "--from-dockerfile", join(dir, "Dockerfile"), "--force"], {
    env,
  });
  rmSync(dir, { recursive: true, force: true });
}

/** What `vm snapshot scan` reports on the realistic image: it must be nothing (no false alarms). */
const scans: { image: string; findings: number; seconds: number }[] = [];

function benchExport(image: string, work: string): void {
  saveSnapshot(image, "bench-dev");
  const started = Date.now();
  const scanned = spawnSync(VM, ["snapshot", "scan", "@bench-dev", "--json"], { env, encoding: "utf8" });
  const findings = (JSON.parse(scanned.stdout) as { findings: unknown[] }).findings;
  scans.push({ image, findings: findings.length, seconds: (Date.now() - started) / 1000 });
  if (findings.length > 0) process.stderr.write(`bench: the scan reports ${JSON.stringify(findings)}\n`);
  const tag = "vm-snapshot/global:bench-dev";
  const size = Number(run("docker", ["image", "inspect", "--format", "{{.Size}}", tag]));
  const out = (name: string) => join(work, name);
  const rm =
    (...names: string[]) =>
    () => {
      for (const n of names) rmSync(out(n), { recursive: true, force: true });
    };
  let rss = 0;
  const contenders = [
    ...(
      [
        ["gzip -6", "vm.tar.gz"],
        ["zstd", "vm.tar.zst"],
      ] as const
    ).map(([kind, file]) => ({
      name: `vm export (${kind})`,
      measure: () => {
        const r = timedRss(VM, ["snapshot", "export", "@bench-dev", "-o", out(file)], { env });
        rss = Math.max(rss, r.rssKb);
        sizes.push({
          name: `vm export ${kind === "zstd" ? "zstd -3" : kind}`,
          bytes: statSync(out(file)).size,
        });
        return r.seconds;
      },
      after: rm(file),
    })),
    {
      name: "docker save -o",
      measure: () => timed("docker", ["save", "-o", out("save.tar"), tag]),
      after: rm("save.tar"),
    },
    {
      name: "earlier tool (save -o + tar -czf)",
      before: () => mkdirSync(out("staging/images"), { recursive: true }),
      measure: () =>
        timed("sh", [
          "-c",
          `docker save -o ${out("staging/images/base.tar")} ${tag} && tar -czf ${out("earlier.tar.gz")} -C ${out("staging")} .`,
        ]),
      after: () => {
        sizes.push({ name: "earlier tool tar -czf", bytes: statSync(out("earlier.tar.gz")).size });
        rm("staging", "earlier.tar.gz")();
      },
    },
    {
      name: "docker save | gzip -6",
      // Single-threaded gzip: 43-45 s, with under 1 s between runs; one run keeps the bench under 15 min.
      rounds: 1,
      measure: () => timed("sh", ["-c", `docker save ${tag} | gzip -6 > ${out("save.gz")}`]),
      after: () => {
        sizes.push({ name: "docker save | gzip -6", bytes: statSync(out("save.gz")).size });
        rm("save.gz")();
      },
    },
    ...(has("pigz")
      ? [
          {
            name: "docker save | pigz",
            rounds: 1,
            measure: () => timed("sh", ["-c", `docker save ${tag} | pigz -6 > ${out("save.pigz")}`]),
            after: rm("save.pigz"),
          },
        ]
      : []),
    ...(has("zstd")
      ? [
          {
            name: "docker save | zstd -T0",
            measure: () => timed("sh", ["-c", `docker save ${tag} | zstd -q -T0 -3 > ${out("save.zst")}`]),
            after: rm("save.zst"),
          },
        ]
      : []),
  ];
  const stats = alternate(SLOW_ROUNDS, contenders);
  const earlier = stats["earlier tool (save -o + tar -czf)"]!;
  const save = stats["docker save -o"]!;
  rows.push({
    name: "export gzip vs earlier tool",
    vm: stats["vm export (gzip -6)"]!,
    baseline: earlier,
    baselineName: "save -o + tar -czf",
    target: 0.5,
  });
  rows.push({
    name: "export gzip vs save | gzip -6",
    vm: stats["vm export (gzip -6)"]!,
    baseline: stats["docker save | gzip -6"]!,
    baselineName: "docker save | gzip -6",
    target: 1,
  });
  rows.push({
    name: "export zstd vs docker save -o",
    vm: stats["vm export (zstd)"]!,
    baseline: save,
    baselineName: "docker save -o",
    target: 1.3,
  });
  for (const other of ["docker save | pigz", "docker save | zstd -T0"]) {
    if (stats[other])
      rows.push({
        name: `export gzip vs ${other}`,
        vm: stats["vm export (gzip -6)"]!,
        baseline: stats[other],
        baselineName: other,
      });
  }
  memory.push({ name: "export", imageBytes: size, peakRssMb: rss / 1024 });
}

/**
 * Imports go to a second engine when there is one (machine B of the two-machine story): there the image's
 * layers are truly absent before each load, as they are on a new machine. On one engine, images that
 * share the layers (the reference images) would make every load a no-op.
 */

function benchImport(work: string): void {
  const second = secondEngineUp();
  const host = second ? SECOND_ENGINE : (process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock");
  const homeB = mkdtempSync(join(tmpdir(), "vm-bench-home-b-"));
  try {
    importRounds(work, host, { ...env, DOCKER_HOST: host, XDG_CONFIG_HOME: second ? homeB : home });
  } finally {
    rmSync(homeB, { recursive: true, force: true });
  }
}

function importRounds(work: string, host: string, envB: NodeJS.ProcessEnv): void {
  const gz = join(work, "in.tar.gz");
  const zst = join(work, "in.tar.zst");
  const plain = join(work, "in.tar");
  run(VM, ["snapshot", "export", "@bench-dev", "-o", gz], { env });
  run(VM, ["snapshot", "export", "@bench-dev", "-o", zst], { env });
  run("docker", ["save", "-o", plain, "vm-snapshot/global:bench-dev"]);
  const imageBytes = Number(
    run("docker", ["image", "inspect", "--format", "{{.Size}}", "vm-snapshot/global:bench-dev"]),
  );
  // Every timed import starts with the image absent from the target engine.
  const forget = () => {
    spawnSync(VM, ["snapshot", "delete", "@bench-in", "--force"], { env: envB });
    removeLabelledImages(host, LABEL);
  };
  let rss = 0;
  const stats = alternate(ROUNDS_IMPORT, [
    {
      name: "vm import (gzip)",
      before: forget,
      measure: () => {
        const r = timedRss(VM, ["snapshot", "import", gz, "--name", "bench-in"], { env: envB });
        rss = Math.max(rss, r.rssKb);
        return r.seconds;
      },
    },
    {
      name: "vm import (zstd)",
      before: forget,
      measure: () => {
        const r = timedRss(VM, ["snapshot", "import", zst, "--name", "bench-in"], { env: envB });
        rss = Math.max(rss, r.rssKb);
        return r.seconds;
      },
    },
    {
      name: "docker load -i",
      before: forget,
      measure: () => timed("docker", ["-H", host, "load", "-i", plain]),
    },
    {
      name: "vm re-import (image present)",
      before: () => {
        spawnSync(VM, ["snapshot", "delete", "@bench-again", "--force"], { env: envB });
        // The image is present: loaded by the previous contender (docker load) or imported once here.
        spawnSync(VM, ["snapshot", "import", zst, "--name", "bench-in", "--force"], { env: envB });
      },
      measure: () => timed(VM, ["snapshot", "import", zst, "--name", "bench-again"], { env: envB }),
    },
  ]);
  rows.push({
    name: "import gzip vs docker load -i",
    vm: stats["vm import (gzip)"]!,
    baseline: stats["docker load -i"]!,
    baselineName: "docker load -i (plain tar)",
    target: 1.3,
  });
  rows.push({
    name: "import zstd vs docker load -i",
    vm: stats["vm import (zstd)"]!,
    baseline: stats["docker load -i"]!,
    baselineName: "docker load -i (plain tar)",
    target: 1.3,
  });
  absolute.push({
    name: "re-import, image present (zstd file)",
    stats: stats["vm re-import (image present)"]!,
    limit: 2,
  });
  memory.push({ name: "import", imageBytes, peakRssMb: rss / 1024 });
  sizes.push({ name: "docker save (uncompressed)", bytes: statSync(plain).size });
  forget();
  spawnSync(VM, ["snapshot", "delete", "@bench-again", "--force"], { env: envB });
  forget();
  for (const f of [gz, zst, plain]) rmSync(f, { force: true });
}

function benchLargeMemory(work: string): void {
  const large = ensureLarge((s) => process.stderr.write(s));
  saveSnapshot(large, "bench-large");
  const size = Number(
    run("docker", ["image", "inspect", "--format", "{{.Size}}", "vm-snapshot/global:bench-large"]),
  );
  const file = join(work, "large.tar.zst");
  const exp = timedRss(VM, ["snapshot", "export", "@bench-large", "-o", file], { env });
  memory.push({ name: "export (3x image)", imageBytes: size, peakRssMb: exp.rssKb / 1024 });
  const id = run("docker", ["image", "inspect", "--format", "{{.Id}}", "vm-snapshot/global:bench-large"]);
  run(VM, ["snapshot", "delete", "@bench-large", "--force"], { env });
  spawnSync("docker", ["rmi", "-f", id]);
  const imp = timedRss(VM, ["snapshot", "import", file, "--name", "bench-large"], { env });
  memory.push({ name: "import (3x image)", imageBytes: size, peakRssMb: imp.rssKb / 1024 });
  run(VM, ["snapshot", "delete", "@bench-large", "--force"], { env });
  rmSync(file, { force: true });
}

const absolute: { name: string; stats: Stats; limit: number }[] = [];
const SLOW_ROUNDS = Number(process.env.BENCH_SLOW_ROUNDS ?? 2);
// Two rounds each of ~40 s (three contenders): keeps the whole bench under 15 minutes on a fresh machine.
const ROUNDS_IMPORT = Number(process.env.BENCH_IMPORT_ROUNDS ?? 2);

function benchTransfers(): void {
  ensureImages((s) => process.stderr.write(s));
  const work = mkdtempSync(join(REPO, "bench", ".work-"));
  try {
    benchExport("vm-bench/dev:1", work);
    benchImport(work);
    if (process.env.BENCH_SKIP_LARGE !== "1") benchLargeMemory(work);
  } finally {
    spawnSync(VM, ["snapshot", "delete", "@bench-dev", "--force"], { env });
    rmSync(work, { recursive: true, force: true });
  }
}

// A full push or pull of the 1 GB image takes 40-50 s a contender: three rounds unless told otherwise.
const REGISTRY_ROUNDS = Number(process.env.BENCH_REGISTRY_ROUNDS ?? process.env.BENCH_ROUNDS ?? 3);
let registryFacts: Record<string, unknown> | undefined;

function benchRegistryRows(): void {
  const r = benchRegistry({
    vm: VM,
    env,
    label: LABEL,
    rounds: REGISTRY_ROUNDS,
    fastRounds: ROUNDS,
    log: (s) => process.stderr.write(s),
  });
  rows.push(...r.rows);
  absolute.push(...r.absolute);
  memory.push(...r.memory);
  registryFacts = r.facts;
}

// A full export or import of the 1 GB image, each way: three rounds unless told otherwise.
const S3_ROUNDS = Number(process.env.BENCH_S3_ROUNDS ?? process.env.BENCH_ROUNDS ?? 3);
let s3Facts: Record<string, unknown> | undefined;

function benchS3Rows(): void {
  const r = benchS3({
    vm: VM,
    env,
    label: LABEL,
    rounds: S3_ROUNDS,
    log: (s) => process.stderr.write(s),
  });
  rows.push(...r.rows);
  memory.push(...r.memory);
  s3Facts = r.facts;
}

const suites: Record<string, () => void> = {
  startup: benchStartup,
  create: benchCreate,
  transfers: benchTransfers,
  registry: benchRegistryRows,
  s3: benchS3Rows,
};
const only = process.argv.slice(2);
// Measure the bundle users run, not the sources a stale bundle would fall back to.
run(join(REPO, "node_modules/.bin/node"), [join(REPO, "scripts/build.ts")]);
try {
  for (const [name, suite] of Object.entries(suites)) {
    if (only.length && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name}\n`);
    const started = Date.now();
    suite();
    process.stderr.write(`bench: ${name} took ${Math.round((Date.now() - started) / 1000)} s\n`);
  }
} finally {
  cleanup();
  rmSync(home, { recursive: true, force: true });
}

const cell = (text: string) => text.replace(/\|/g, "\\|");
const lines = [
  `| measurement | vm (median) | baseline | baseline (median) | ratio | target | spread vm / baseline |`,
  `|---|---|---|---|---|---|---|`,
];
for (const r of rows) {
  const ratio = r.vm.median / r.baseline.median;
  const bound = r.target === undefined ? 0 : r.target * r.baseline.median + (r.slack ?? 0);
  const target =
    r.target === undefined
      ? ""
      : `<= ${r.target}x${r.slack ? ` + ${r.slack} s` : ""} ${r.vm.median <= bound ? "met" : "NOT met"}`;
  lines.push(
    `| ${cell(r.name)} | ${fmt(r.vm.median)} | ${cell(r.baselineName)} | ${fmt(r.baseline.median)} | ${ratio.toFixed(2)}x | ${target} | ${fmt(r.vm.min)}–${fmt(r.vm.max)} / ${fmt(r.baseline.min)}–${fmt(r.baseline.max)} |`,
  );
}
const fmtBytes = (b: number) =>
  b >= 1024 ** 3 ? `${(b / 1024 ** 3).toFixed(2)} GiB` : `${(b / 1024 ** 2).toFixed(0)} MiB`;
for (const a of absolute) {
  lines.push(
    `| ${a.name} | ${fmt(a.stats.median)} | (absolute) | | | <= ${a.limit} s ${a.stats.median <= a.limit ? "met" : "NOT met"} | ${fmt(a.stats.min)}–${fmt(a.stats.max)} |`,
  );
}
if (memory.length) {
  lines.push("", "| peak RSS of vm | image size | peak RSS | target |", "|---|---|---|---|");
  for (const m of memory)
    lines.push(
      `| ${m.name} | ${fmtBytes(m.imageBytes)} | ${m.peakRssMb.toFixed(0)} MB | <= 150 MB ${m.peakRssMb <= 150 ? "met" : "NOT met"} |`,
    );
}
for (const s of scans)
  lines.push(
    "",
    `secret scan of ${s.image}: ${s.findings} finding(s) (target 0: ${s.findings === 0 ? "met" : "NOT met"}), ${s.seconds.toFixed(1)} s`,
  );
if (sizes.length) {
  const unique = new Map(sizes.map((s) => [s.name, s.bytes]));
  lines.push("", "| archive | size |", "|---|---|");
  for (const [name, bytes] of unique) lines.push(`| ${cell(name)} | ${fmtBytes(bytes)} |`);
}
console.log(lines.join("\n"));
const resultsDir = join(REPO, "bench", "results");
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(
  file,
  JSON.stringify(
    {
      date: new Date().toISOString(),
      machine: { cpus: availableParallelism(), node: process.version },
      rounds: ROUNDS,
      rows,
      absolute,
      memory,
      sizes,
      scans,
      ...(registryFacts ? { registry: registryFacts } : {}),
      ...(s3Facts ? { s3: s3Facts } : {}),
    },
    null,
    2,
  ) + "\n",
);
console.log(`\nraw results: ${file}`);
