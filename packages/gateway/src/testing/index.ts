/**
 * Test fakes of @gbt/gateway, for tests and benches only (`@gbt/gateway/testing`): never part of
 * the main entry point.
 */
export { type FakeNode, type FakeNodeFaults, type FakeNodeOptions, startFakeNode } from "./fake-node.js";
