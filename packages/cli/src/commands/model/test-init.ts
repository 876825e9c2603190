import { join } from "node:path";
import { generateTestModel, resolvePaths, TEST_MODEL_ID } from "@gbt/node";
import { Flags } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";

interface TestInitResult {
  id: string;
  path: string;
  sha256: string;
  sizeBytes: number;
  shape: string;
  parameters: number;
}

export default class ModelTestInit extends GbtCommand {
  static override summary = "Generate the pipeline-test model (a tiny random-weight GGUF).";

  static override description =
    `Writes a llama-architecture GGUF with seeded random weights into the models directory. It runs real llama.cpp compute on the embedded backend, but its text is noise: it exists to test the pipeline (serving, benchmarking, routing, accounting) on any machine with nothing to download. Real use is \`gbt serve --model path/to/model.gguf\` or an Ollama model.

The same seed always gives a byte-identical file (same sha256). --shape small makes a larger test model; --shape 1b makes a ~1B-parameter random model (about 2 GB) for measuring real hardware.

\`gbt serve\` creates the tiny model on first use, so you rarely need this command.`;

  static override examples = [
    {
      description: "Write gbt-test-tiny into the models directory",
      command: "<%= config.bin %> <%= command.id %>",
    },
    {
      description: "A ~1B-parameter random model to measure real hardware",
      command: "<%= config.bin %> <%= command.id %> --shape 1b --out ./random-1b.gguf",
    },
  ];

  static override flags = {
    shape: Flags.string({ description: "Model shape.", options: ["tiny", "small", "1b"], default: "tiny" }),
    seed: Flags.integer({ description: "Seed of the random weights.", default: 1, min: 0, max: 2 ** 31 - 1 }),
    out: Flags.string({ description: "Output path (default: <data dir>/models/<id>.gguf)." }),
  };

  async run(): Promise<TestInitResult> {
    const { flags } = await this.parse(ModelTestInit);
    const id =
      flags.shape === "tiny" && flags.seed === 1
        ? TEST_MODEL_ID
        : `gbt-test-${flags.shape}${flags.seed === 1 ? "" : `-s${flags.seed}`}`;
    const path = flags.out ?? join(resolvePaths().modelsDir, `${id}.gguf`);
    if (flags.shape === "1b") this.note("Writing a ~2 GB random model; this takes about a minute…");
    const written = await generateTestModel(path, { shape: flags.shape as "tiny", seed: flags.seed });
    const result = {
      id,
      path: written.path,
      sha256: written.sha256,
      sizeBytes: written.sizeBytes,
      shape: flags.shape,
      parameters: written.parameters,
    };
    this.out(
      `Wrote ${result.path}\n  id ${id}, ${result.parameters.toLocaleString("en-US")} parameters, ${result.sizeBytes.toLocaleString("en-US")} bytes\n  sha256 ${result.sha256}\n  A pipeline-test model: real compute, noise text.`,
    );
    return result;
  }
}
