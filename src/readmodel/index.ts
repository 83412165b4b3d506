export { CompactedView, type CompactedViewOptions } from './compactedView.ts';
export { viewScripts, type ViewScripts, type ViewKeys, type ApplyResult } from './scripts.ts';
