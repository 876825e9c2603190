import { type PullModelResult, type PullProgressEvent, pullIntoNode, resolvePaths } from "@gbt/node";
import { ExitCode, GbtError } from "@gbt/protocol";
import { Args, Flags } from "@oclif/core";
import { GbtCommand } from "../../gbt-command.js";
import { createProgressReporter } from "../../progress-bar.js";

/** What `--json` prints: the installed model. */
export type ModelPullResult = Pick<
  PullModelResult,
  "id" | "path" | "sha256" | "bytes" | "source" | "kind" | "alreadyPresent"
> &
  Partial<Pick<PullModelResult, "manifest">>;

function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

export default class ModelPull extends GbtCommand {
  static override summary = "Download a model into this node's models dir, verified before it is installed.";

  static override description = `SOURCE is one of:

- NAME@VERSION: a model from the gateway's registry. Its signed manifest is fetched and verified, its backends and VRAM band must fit this node, and every byte of the weights is checked against the manifest's sha256 and size.
- hf:OWNER/REPO/FILE.gguf: a GGUF file on the Hugging Face hub (GBT_HF_ENDPOINT or HF_ENDPOINT name a mirror; HF_TOKEN for gated files).
- https://…/FILE.gguf: a bare URL; --sha256 is required (nothing else can tell right bytes from wrong ones).
- gbt-test-tiny or gbt-test-small: the generated pipeline-test models.
- an Ollama model name, on a node whose backend is Ollama: pulled by Ollama itself.

The model is installed as <models dir>/<ID>.gguf (ID: --as, else the registry name or the file name without .gguf). A dropped connection is resumed (HTTP Range); the sha256 is computed while downloading; free disk space is checked first; the file is written under a temporary name and renamed only once its size and hash match, and nothing is left behind on a failure or Ctrl-C. Redirects are followed only to the source's own host (and the hub's CDN for hf:) unless --allow-host names another. Progress goes to stderr; the result to stdout.

Exit codes: 0 installed (or already there with the same hash); 2 usage (a bad SOURCE, a URL without --sha256); 4 the manifest's signature is invalid or for another chain; 5 the gateway or the download host is unreachable (SOURCE_UNREACHABLE); 6 the bytes differ from the manifest or --sha256 (ARTIFACT_MISMATCH), the model does not fit this node (PREFLIGHT_FAILED) or a redirect was refused (POLICY_DENIED); 8 no such model or file; 9 another file with that id is installed; 11 not enough disk space; 130 interrupted.`;

  static override examples = [
    { description: "A registered model", command: "<%= config.bin %> <%= command.id %> tiny-chat@1.0.0" },
    {
      description: "A file on the Hugging Face hub, under a shorter id",
      command:
        "<%= config.bin %> <%= command.id %> hf:bartowski/Llama-3.2-1B-Instruct-GGUF/Llama-3.2-1B-Instruct-Q4_K_M.gguf --as llama-3.2-1b",
    },
    {
      description: "A bare URL with its published sha256, as JSON",
      command:
        "<%= config.bin %> <%= command.id %> https://example.com/models/tiny.gguf --sha256 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 --json",
    },
  ];

  static override args = {
    source: Args.string({
      description: "NAME@VERSION, hf:OWNER/REPO/FILE.gguf, an https:// URL, or a test model.",
      required: true,
    }),
  };

  static override flags = {
    as: Flags.string({ helpValue: "ID", description: "Install as this model id (the file <ID>.gguf)." }),
    sha256: Flags.string({
      helpValue: "HEX",
      description: "The file's sha256 (64 hex characters): required for a bare URL.",
    }),
    gateway: Flags.string({
      helpValue: "URL",
      description:
        "Gateway whose registry resolves NAME@VERSION (default: GBT_GATEWAY_URL, the node's gateway, http://127.0.0.1:8080).",
    }),
    "chain-id": Flags.integer({
      helpValue: "N",
      min: 1,
      description: "Chain the manifest must be signed for (default: the node's, else the gateway's).",
    }),
    "allow-host": Flags.string({
      helpValue: "HOST[:PORT]",
      multiple: true,
      description: "Also follow redirects to this host (repeatable).",
    }),
    "allow-loopback-http": Flags.boolean({
      hidden: true,
      description: "Allow plain-http sources on 127.0.0.1 (tests and a local mirror only).",
    }),
  };

  async run(): Promise<ModelPullResult> {
    const { args, flags } = await this.parse(ModelPull);
    const controller = new AbortController();
    // A second Ctrl-C leaves at once; `on`, not `once` (see node benchmark).
    const onSignal = () => {
      if (controller.signal.aborted) process.exit(ExitCode.interrupted);
      controller.abort(new GbtError("INTERRUPTED", "Interrupted."));
    };
    process.on("SIGINT", onSignal);
    process.on("SIGTERM", onSignal);
    const progress = createProgressReporter(process.stderr);
    const showProgress = !this.jsonEnabled() || Boolean(process.stderr.isTTY);
    const started = Date.now();
    const onProgress = (event: PullProgressEvent) => {
      if (event.phase !== "download") return;
      const seconds = Math.max(0.001, (Date.now() - started) / 1000);
      progress.update({
        // The bar's phase names are the benchmark's; a download shows as its own label.
        phase: "measure",
        completed: event.bytes,
        total: event.totalBytes ?? event.bytes,
        label: `${event.id}  ${mib(event.bytes)}${event.totalBytes ? ` of ${mib(event.totalBytes)}` : ""}  ${mib(event.bytes / seconds)}/s`,
      });
    };
    try {
      const result = await pullIntoNode(args.source, {
        paths: resolvePaths(),
        ...(flags.as !== undefined ? { as: flags.as } : {}),
        ...(flags.sha256 !== undefined ? { sha256: flags.sha256 } : {}),
        ...(flags.gateway !== undefined ? { gatewayUrl: flags.gateway } : {}),
        ...(flags["chain-id"] !== undefined ? { chainId: flags["chain-id"] } : {}),
        ...(flags["allow-host"] ? { allowedHosts: flags["allow-host"] } : {}),
        ...(flags["allow-loopback-http"] ? { allowLoopbackHttp: true } : {}),
        signal: controller.signal,
        ...(showProgress ? { onProgress } : {}),
        onNote: (message) => this.note(message),
      });
      progress.stop();
      this.out(
        result.alreadyPresent
          ? `${result.id} is already installed at ${result.path} (sha256 ${result.sha256}).`
          : result.path
            ? `Installed ${result.id}: ${result.path}, ${mib(result.bytes)}, sha256 ${result.sha256}${result.manifest ? `, signed by ${result.manifest.publisher}` : ""}.`
            : `Pulled ${result.id} through the backend.`,
      );
      return {
        id: result.id,
        path: result.path,
        sha256: result.sha256,
        bytes: result.bytes,
        source: result.source,
        kind: result.kind,
        alreadyPresent: result.alreadyPresent,
        ...(result.manifest ? { manifest: result.manifest } : {}),
      };
    } finally {
      progress.stop();
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
  }
}
