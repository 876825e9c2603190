/**
 * `@gbt/operator/testing`: the Operator's test fakes, for its own tests and the CLI's: a real
 * agent behind the node's `/agent/*` routes on loopback, and a scripted OpenAI/Ollama tool-call
 * server. Never exported from the main entry.
 */
export { startTestAgentServer, type TestAgentServer, type TestAgentServerOptions } from "./agent-server.js";
export {
  type ScriptedAnswer,
  type ScriptedChatRequest,
  type ScriptedChatServer,
  type ScriptedToolCall,
  startScriptedChatServer,
} from "./scripted-chat-server.js";
