/** The node API: its paths, the response schemas of `/v1/models` and `/healthz`, and the SSE chunk layout. */
export { nodePaths } from "./paths.js";
export {
  type NodeHealth,
  type NodeModel,
  type NodeModelList,
  nodeHealthSchema,
  nodeModelListSchema,
  nodeModelSchema,
} from "./schemas.js";
export {
  type ContentEventCountOptions,
  contentEventCount,
  SSE_DATA_PREFIX,
  SSE_DONE_EVENT,
  SSE_EVENT_END,
  SSE_FRAMING_EVENTS,
} from "./sse-layout.js";
