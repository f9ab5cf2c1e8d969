export {
  type ActorState,
  decodeInspectBatch,
  encodeInspectBatch,
  type InspectBatch,
  type InspectEvent,
  MAX_INSPECT_BATCH_BYTES,
  type NodeSummary,
  nodeSummary,
} from './batch.js';
export { GroupView, type GroupViewOptions, type NodeView, type ViewEvent } from './group-view.js';
export { type MetricsSnapshot, NodeMetrics, type NodeMetricsOptions } from './metrics.js';
export { NodeInspector, type NodeInspectorOptions, stateText } from './node-inspector.js';
export { renderTerminal } from './terminal.js';
export { notLoopback, startWebView, viewState, type WebView } from './web.js';
