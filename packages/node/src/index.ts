/**
 * @gbt/node: this machine. Hardware probe, inference backends (embedded llama.cpp, Ollama,
 * OpenAI-compatible), the generated test model, config and state, setup, and the node server.
 */

export { type GbtPaths, resolvePaths } from "@gbt/store";
export { buildBackend, defaultCapacity, resolveEmbeddedModel } from "./backend-factory.js";
export {
  createEmbeddedBackend,
  DEFAULT_EMBEDDED_CAPACITY,
  DEFAULT_EMBEDDED_CONTEXT_CAP,
  DEFAULT_EMBEDDED_TEMPERATURE,
  defaultThreads,
  EMBEDDED_TIMINGS_SOURCE,
  type EmbeddedBackendOptions,
  type EmbeddedModelFile,
} from "./backends/embedded.js";
export { createOllamaBackend, type OllamaBackendOptions } from "./backends/ollama.js";
export {
  createOpenAICompatibleBackend,
  type OpenAICompatibleBackendOptions,
} from "./backends/openai-compatible.js";
export * from "./backends/types.js";
export {
  BENCHMARK_RECORD_TTL_SECONDS,
  type BenchmarkMode,
  type BenchmarkParameters,
  type BenchmarkRecordPayload,
  type BenchmarkVerdicts,
  compareRecords,
  type HeadlineName,
  headlineMetrics,
  type ListBenchmarkRecordsOptions,
  listBenchmarkRecords,
  type RecordComparison,
  type SignedBenchmarkRecord,
  signBenchmarkRecord,
  storeBenchmarkRecord,
  verifyBenchmarkRecord,
} from "./benchmark/benchmark-record.js";
export {
  DEFAULT_SEED,
  type MicroBenchmarkOptions,
  type MicroRepetition,
  type MicroResults,
  runMicroBenchmark,
} from "./benchmark/micro.js";
export {
  type BenchmarkProgress,
  belowThresholdError,
  benchmarkHistory,
  DEFAULT_GEN_TOKENS,
  DEFAULT_PROMPT_TOKENS,
  DEFAULT_REPETITIONS,
  DEFAULT_WARMUP,
  type NodeBenchmarkResult,
  type RunNodeBenchmarkOptions,
  runNodeBenchmark,
} from "./benchmark/run-benchmark.js";
export {
  concurrencyLevels,
  DEFAULT_MAX_CONCURRENCY,
  DEFAULT_MIN_GAIN_PCT,
  DEFAULT_TTFT_P99_TARGET_MS,
  eligibleCapacity,
  FLOOR_TOK_PER_SEC,
  runServeSweep,
  type ServeLevel,
  type ServeResults,
  type ServeSweepOptions,
  type SweepStopReason,
} from "./benchmark/serve-sweep.js";
export {
  benchmarkMetrics,
  type MetricDefinition,
  mean,
  percentile,
  requestMetrics,
  type Summary,
  sampleSd,
  statisticsDefinition,
  summarize,
} from "./benchmark/stats.js";
export {
  applyClaim,
  DEFAULT_CLAIM_TTL_SECONDS,
  MAX_CLAIM_LIFETIME_SECONDS,
  type VerifyNodeClaimOptions,
  verifyNodeClaim,
} from "./claim/claim.js";
export {
  type ClaimNodeParameters,
  type ClaimNodeResult,
  claimNode,
  DEFAULT_NODE_URL,
  parseClaimCode,
  type SignNodeClaimParameters,
  signNodeClaim,
} from "./claim/claim-client.js";
export {
  CLAIM_CODE_ALPHABET,
  CLAIM_CODE_PATTERN,
  claimFilePath,
  ensureClaimCode,
  newClaimCode,
  normalizeClaimCode,
  readClaimCode,
  rotateClaimCode,
} from "./claim/claim-code.js";
export { type SetupHardwareSummary, setupHardwareSummary } from "./claim/hardware-summary.js";
export {
  createSetupController,
  type SetupController,
  type SetupControllerOptions,
  type SetupInfo,
  type SetupState,
} from "./claim/setup-controller.js";
export { MAX_CLAIM_BODY_BYTES, setupPaths } from "./claim/setup-routes.js";
export { type SetupServer, type SetupServerOptions, startSetupServer } from "./claim/setup-server.js";
export {
  type BackendConfig,
  backendConfigSchema,
  type GatewayConfig,
  type GpuChoice,
  type GpuLayers,
  gatewayConfigSchema,
  gpuChoices,
  gpuLayersSchema,
  loadConfig,
  type NodeConfig,
  type NodeMode,
  nodeConfigSchema,
  nodeModes,
  readConfigIfPresent,
  saveConfig,
} from "./config.js";
export {
  type BackendChoice,
  type BackendResolution,
  backendChoiceSchema,
  DEFAULT_DETECT_TIMEOUT_MS,
  DEFAULT_OLLAMA_URL,
  type DetectBackendsOptions,
  type DetectedBackend,
  defaultOpenAICandidates,
  detectBackends,
  detectedBackendSchema,
  EMBEDDED_BACKEND_NAME,
  type OpenAICandidate,
  type ResolveBackendChoiceParameters,
  resolveBackendChoice,
} from "./detect-backends.js";
export {
  DEFAULT_LINK_REQUEST_TIMEOUT_MS,
  DEFAULT_LINK_RETRY_MAX_MS,
  DEFAULT_LINK_RETRY_MIN_MS,
  type GatewayLink,
  type GatewayLinkOptions,
  type ReceiptInput,
  startGatewayLink,
} from "./gateway-link.js";
export { decideGpu, type GpuBackend, type GpuDecision, type GpuFacts } from "./gpu/decide-gpu.js";
export { type GpuStatus, gpuStatusSchema, probeGpuFacts, resolveGpu } from "./gpu/resolve-gpu.js";
export {
  type CpuFeature,
  type CpuInfo,
  cpuFeatureNames,
  cpuInfoSchema,
  DEFAULT_HARDWARE_PROBE_TIMEOUT_MS,
  type GpuInfo,
  gpuInfoSchema,
  type HardwareProfile,
  hardwareProfileSchema,
  type ProbeHardwareOptions,
  probeHardware,
  type SystemInformation,
} from "./hardware.js";
export { ensureIdentity, loadNodeAccount } from "./identity.js";
export { gatewayPin, gatewayPinsFile } from "./link/gateway-pins.js";
export {
  DEFAULT_DIAL_MAX_MS,
  DEFAULT_DIAL_MIN_MS,
  type GatewayPin,
  type OutboundLink,
  type OutboundLinkOptions,
  startOutboundLink,
} from "./link/outbound-link.js";
export * from "./models/index.js";
export { getMeta, type NodeDatabase, nodeMigrations, openNodeDatabase, setMeta } from "./node-database.js";
export {
  createNodeLogger,
  NODE_LOG_ROTATE_BYTES,
  NODE_LOG_TAIL_BYTES,
  type NodeLoggerOptions,
  nodeLogFile,
  redactedLogPaths,
  tailLogFile,
} from "./node-log.js";
export { DEFAULT_PORT, type RunningNode, type ServeParameters, startServe } from "./serve.js";
export { type ApiKeyInfo, ApiKeyStore, type CreatedApiKey, withNodeApiKeys } from "./server/api-keys.js";
export {
  type NodeServer,
  type NodeServerOptions,
  startNodeServer,
} from "./server/node-server.js";
export {
  DEFAULT_CHAIN_ID,
  type NodeClaimState,
  type NodeProfile,
  type SetupParameters,
  type SetupResult,
  setupNode,
} from "./setup.js";
export { type StartedNode, type StartNodeParameters, startNode } from "./start-node.js";
export { nodeStatus } from "./status.js";
export {
  DEFAULT_GGUF_ALIGNMENT,
  encodeGgufHeader,
  float32ToFloat16Bits,
  GGUF_VERSION,
  GgmlTensorType,
  type GgmlTensorTypeName,
  type GgufFile,
  type GgufScalarType,
  type GgufScalarValue,
  type GgufTensor,
  type GgufValue,
  GgufValueType,
  gguf,
  type TensorDataSource,
  tensorByteLength,
  type WrittenGguf,
  writeGguf,
} from "./test-model/gguf-writer.js";
export {
  countTestModelParameters,
  DEFAULT_TEST_MODEL_SEED,
  ensureTestModel,
  type GeneratedTestModel,
  type GenerateTestModelOptions,
  generateTestModel,
  TEST_MODEL_ID,
  TEST_MODEL_VOCAB_SIZE,
  type TestModelShape,
  type TestModelShapeName,
  testModelPath,
  testModelShapes,
} from "./test-model/test-model.js";
