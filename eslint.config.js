import js from "@eslint/js";
import tseslint from "typescript-eslint";
import { layersPlugin } from "./scripts/layers.js";

export default tseslint.config(
  { ignores: ["dist/", "node_modules/", "bench/results/"] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: {
        projectService: { allowDefaultProject: ["eslint.config.js", "scripts/layers.js"] },
        tsconfigRootDir: import.meta.dirname,
      },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": [
        "error",
        {
          // node:test's describe/it return promises the runner itself tracks.
          allowForKnownSafeCalls: [
            { from: "package", package: "node:test", name: ["describe", "it", "test", "suite"] },
          ],
        },
      ],
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/require-await": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
    },
  },
  // The layer check is plain JavaScript that ESLint itself loads; type-aware rules have no types to use there.
  { files: ["scripts/layers.js"], ...tseslint.configs.disableTypeChecked },
  {
    // The arrows between src/ folders (docs/architecture.md): no cycle, no layer reaching above itself.
    files: ["src/**/*.ts"],
    plugins: { vm: layersPlugin },
    rules: { "vm/layers": "error" },
  },
);
