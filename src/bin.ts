// The process entry: checks the Node.js version before loading anything that needs a newer one.
const [major = 0, minor = 0] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 15)) {
  process.stderr.write(
    `Error: vm needs Node.js 22.15 or newer; this is ${process.versions.node}\nHint: Install a current Node.js LTS\n`,
  );
  process.exit(1);
}
const { main } = await import("./main.ts");
const { quietOnClosedPipes } = await import("./cli/closed-pipe.ts");
quietOnClosedPipes([process.stdout, process.stderr]);
process.exitCode = await main(process.argv.slice(2), { io: process, env: process.env, cwd: process.cwd() });
