/**
 * Test fakes of @gbt/gateway, for tests and benches only (`@gbt/gateway/testing`): never part of
 * the main entry point.
 */
export { type FakeNode, type FakeNodeFaults, type FakeNodeOptions, startFakeNode } from "./fake-node.js";
export {
  checkAnswer,
  type FuzzOutcome,
  type FuzzReport,
  type FuzzRequest,
  gatewayFuzzRoutes,
  type HttpFuzzTarget,
  httpFuzzer,
  parseResponses,
  runHttpFuzz,
  sendFuzzRequest,
} from "./http-fuzz.js";
