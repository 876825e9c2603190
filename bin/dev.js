#!/usr/bin/env node
// Development entry point: same commands, oclif development mode (no manifest cache, verbose errors).
import { execute } from "@oclif/core";

await execute({ development: true, dir: import.meta.url });
