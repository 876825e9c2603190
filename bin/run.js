#!/usr/bin/env node
// Production entry point of the `gbt` CLI: loads the compiled commands listed in oclif.manifest.json.
import { execute } from "@oclif/core";

await execute({ dir: import.meta.url });
