/**
 * @gbt/node: this machine. Hardware probe, inference backends (embedded llama.cpp, Ollama,
 * OpenAI-compatible), the generated test model, config and state, setup, and the node server.
 */
export * from "./backends/types.js";
