/**
 * @gbt/node/testing: fakes that speak the real protocols, for tests of gbt and of code built on it
 * (an Ollama server, an OpenAI-compatible server, a scripted backend). Never imported by the
 * main entry point.
 */

export {
  type ArtifactFaults,
  type ArtifactRequest,
  type ArtifactServer,
  type ArtifactServerOptions,
  startArtifactServer,
} from "./artifact-server.js";
export {
  exampleOf,
  type FakeOllama,
  type FakeOllamaModel,
  type FakeOllamaModelDetails,
  type FakeOllamaOptions,
  type FakeOllamaRequest,
  ollamaModelName,
  startFakeOllama,
  textVector,
} from "./fake-ollama.js";
export {
  type FakeOpenAIRequest,
  type FakeOpenAIServer,
  type FakeOpenAIServerOptions,
  startFakeOpenAIServer,
} from "./fake-openai-server.js";
export {
  createScriptedBackend,
  type ScriptedBackend,
  type ScriptedBackendOptions,
} from "./scripted-backend.js";
