import { defineConfig } from "vitest/config";

// One vitest run for every workspace; tests live beside their code (x.ts / x.test.ts).
export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.{ts,tsx}", "contracts/src/**/*.test.ts", "scripts/**/*.test.ts"],
    exclude: ["**/node_modules/**", "**/dist/**"],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests spawn real processes and load real models: keep the 2-core CI machine from thrashing.
    maxWorkers: 2,
    reporters: ["default"],
  },
});
