/** The `--gpu` / `--gpu-layers` flags shared by `gbt setup`, `gbt serve` and `gbt node benchmark`. */
import { type GpuChoice, type GpuLayers, gpuChoices } from "@gbt/node";
import { GbtError } from "@gbt/protocol";
import { Flags } from "@oclif/core";

export const gpuFlags = {
  gpu: Flags.string({
    description:
      "GPU backend of the embedded backend: auto (default: the best present, else the CPU with the reason), cuda, vulkan, metal (an error when it cannot run here), or off.",
    options: [...gpuChoices],
  }),
  "gpu-layers": Flags.string({
    helpValue: "N|auto|max",
    description:
      "Layers offloaded to the GPU: auto (default: as many as fit, with a warning naming how many), max (all, or refuse with the numbers), or a count.",
  }),
};

/** Parses --gpu-layers. */
export function parseGpuLayers(input: string | undefined): GpuLayers | undefined {
  if (input === undefined) return undefined;
  if (input === "auto" || input === "max") return input;
  if (/^\d{1,6}$/.test(input)) return Number(input);
  throw new GbtError(
    "USAGE",
    `--gpu-layers expects a number of layers, auto or max, got ${JSON.stringify(input)}.`,
    {
      hint: "For example --gpu-layers auto, --gpu-layers max or --gpu-layers 20.",
    },
  );
}

/** The options object fields of both flags, for a service call. */
export function gpuOptions(flags: { gpu?: string | undefined; "gpu-layers"?: string | undefined }): {
  gpu?: GpuChoice;
  gpuLayers?: GpuLayers;
} {
  const gpuLayers = parseGpuLayers(flags["gpu-layers"]);
  return {
    ...(flags.gpu !== undefined ? { gpu: flags.gpu as GpuChoice } : {}),
    ...(gpuLayers !== undefined ? { gpuLayers } : {}),
  };
}
