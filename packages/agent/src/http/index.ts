/** The agent's HTTP face: its routes as a Hono sub-app. */
export { type AgentEndpoint, agentRoutes } from "./agent-routes.js";
