// Bundles the CLI into one ESM file, dist/vm.mjs: one file to parse and no type stripping is what keeps
// `vm` starting fast (docs/performance.md). esbuild-wasm: the WebAssembly build needs no install script.
import { rm } from "node:fs/promises";
import { build } from "esbuild-wasm";

const started = Date.now();
// Chunk names carry a content hash: without this, every build would leave the previous chunks behind.
await rm(new URL("../dist/chunks", import.meta.url).pathname, { recursive: true, force: true });
await build({
  entryPoints: [new URL("../src/bin.ts", import.meta.url).pathname],
  outdir: new URL("../dist", import.meta.url).pathname,
  entryNames: "vm",
  chunkNames: "chunks/[name]-[hash]",
  outExtension: { ".js": ".mjs" },
  // Split at dynamic imports: the snapshot transfer code and its Node built-ins (zlib, TLS, ...) load only
  // for the commands that use them, which keeps every other command's start-up short.
  splitting: true,
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node22.15",
  minify: true,
  legalComments: "linked",
  // commander is CommonJS and requires Node built-ins; an ESM bundle needs a real `require` for that.
  banner: {
    js: "import{createRequire as __vmRequire}from'node:module';const require=__vmRequire(import.meta.url);",
  },
  logLevel: "warning",
});
console.log(`built dist/vm.mjs in ${Date.now() - started} ms`);
