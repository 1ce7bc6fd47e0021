// `npm run bench`: measures vm against the plain engine pipelines in the same run. See docs/performance.md.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { alternate, fmt, run, timed, type Stats } from "./lib.ts";

const REPO = resolve(import.meta.dirname, "..");
const VM = join(REPO, "bin/vm");
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const LABEL = "dev.vm.bench=1";

interface Row {
  name: string;
  vm: Stats;
  baseline: Stats;
  baselineName: string;
  target?: number;
}

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

const suites: Record<string, () => void> = { startup: benchStartup, create: benchCreate };
const only = process.argv.slice(2);
try {
  for (const [name, suite] of Object.entries(suites)) {
    if (only.length && !only.includes(name)) continue;
    process.stderr.write(`bench: ${name} (${ROUNDS} rounds)\n`);
    suite();
  }
} finally {
  cleanup();
  rmSync(home, { recursive: true, force: true });
}

const lines = [
  `| measurement | vm (median) | baseline | baseline (median) | ratio | target | spread vm / baseline |`,
  `|---|---|---|---|---|---|---|`,
];
for (const r of rows) {
  const ratio = r.vm.median / r.baseline.median;
  const target = r.target === undefined ? "" : `<= ${r.target}x ${ratio <= r.target ? "met" : "NOT met"}`;
  lines.push(
    `| ${r.name} | ${fmt(r.vm.median)} | ${r.baselineName} | ${fmt(r.baseline.median)} | ${ratio.toFixed(2)}x | ${target} | ${fmt(r.vm.min)}–${fmt(r.vm.max)} / ${fmt(r.baseline.min)}–${fmt(r.baseline.max)} |`,
  );
}
console.log(lines.join("\n"));
const resultsDir = join(REPO, "bench", "results");
mkdirSync(resultsDir, { recursive: true });
const file = join(resultsDir, `${new Date().toISOString().replace(/[:.]/g, "-")}.json`);
writeFileSync(file, JSON.stringify({ date: new Date().toISOString(), rounds: ROUNDS, rows }, null, 2) + "\n");
console.log(`\nraw results: ${file}`);
