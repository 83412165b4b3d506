// The public API of the package. Every export is named here on purpose.
export { MabeamError, errorCodes, isMabeamError, describeError, type ErrorCode } from './errors.ts';
export { createLogger, silentLogger, type Logger } from './log/logger.ts';
export { createKafka, createProducer, silenceKafkajsTimerWarnings } from './kafka/client.ts';
export { startStack, stopStack, stackStatus, stopNamedStack, resolveEndpoints, endpointsFromEnvironment, resolveStackOptions } from './stack/index.ts';
export type { LocalStackOptions, StackEndpoints, StackState, StackStartReport, StartedStack } from './stack/index.ts';
export { applyTopics, loadTopicDefinitions, topicName, topicNames, defaultTopicPrefix } from './topics/index.ts';
export type { TopicDefinition, ApplyReport, TopicChange, TopicNames } from './topics/index.ts';
export { loadCatalog, createCatalog, type SchemaCatalog, type EventSchema } from './schemas/catalog.ts';
export { createRegistryClient, registerCatalog, registerSchema, type RegistryClient } from './schemas/registry.ts';
export { subjectFor } from './schemas/subjects.ts';
export { EventCodec, typedEvent, type DecodedAs, type DecodedEvent, type DecodedOf, type DecodeOptions, type TypedEvent } from './codec/codec.ts';
export { frame, unframe } from './codec/wireFormat.ts';
export { validateEvent } from './codec/validation.ts';
export { newEnvelope, type EnvelopeOptions } from './events/envelope.ts';
export type * from './events/types.ts';
export { EventProducer, eventHeaders, type SendOptions, type TraceContext } from './producer/eventProducer.ts';
export { EventConsumer, type EventConsumerOptions, type EventContext, type ConsumedTopic } from './consumer/eventConsumer.ts';
export { DeadLetterWriter, deadLetterHeaders, type SourceMessage } from './deadletters/deadLetterWriter.ts';
export { CompactedView, type CompactedViewOptions } from './readmodel/index.ts';
export { createMetrics, coordinationLatencyBuckets, type Metrics, type MetricsOptions, type RoundStatus, type AnswerKind, type VariableChangeOutcome } from './metrics/metrics.ts';
export { serveMetrics, defaultMetricsPort, type MetricsServer, type ServeMetricsOptions } from './metrics/server.ts';
export {
  defineAgent,
  AgentHost,
  AgentRegistry,
  assessHealth,
  trackHealth,
  defaultHealthPolicy,
  transition,
  canTransition,
  lifecycleTransitions,
  lifecycleStates,
  eligibleForBidRequest,
  eligibleForProposal,
  eligibleForStep,
  addressedTo,
  StepError,
  loadAgentModule,
  readSnapshots,
  hostDefaults,
  instanceHeader,
} from './agents/index.ts';
export type {
  AgentDefinition,
  AgentContext,
  AgentHandlers,
  BidAnswer,
  VoteAnswer,
  AgentHostOptions,
  AgentRegistryOptions,
  RegisteredAgent,
  AgentLifecycle,
  AgentHealth,
  AgentResources,
  Health,
  HealthPolicy,
  HealthSignal,
  HealthChange,
  AgentModule,
  Trial,
  TrialAnswer,
  TrialContext,
  Step,
  StepAnswer,
  StepContext,
} from './agents/index.ts';
export { Supervisor, parseSupervisorSpec, backoffDelay, type SupervisorSpec, type ChildSpec, type SupervisorEvent, type RestartPolicy } from './supervisor/supervisor.ts';
export { deterministicEventId } from './events/envelope.ts';
export {
  coordinate,
  applyRoundEvent,
  emptyRounds,
  defaultMaxAmount,
  ProtocolRegistry,
  builtinProtocols,
  defaultProtocols,
  registerProtocol,
  sharedProtocols,
  rankBids,
  firstPrice,
  vickrey,
  majority,
  weighted,
  unanimous,
  quorum,
  english,
  dutch,
  equilibrium,
  delegation,
  isPass,
  stageEventId,
  rejectionCodes,
} from './protocols/index.ts';
export type { Protocol, ProtocolKind, RoundEvent, RoundOpen, RoundAnswer, RoundClose, RoundDecision, Rejected, Closed, Outcome, Verdict, RejectionCode, Rounds, NextStage, Staged } from './protocols/index.ts';
export { Coordinator, type CoordinatorOptions } from './coordinator/coordinator.ts';
export { RoundClient, type AuctionRequest, type ConsensusRequest, type RoundClientOptions } from './coordinator/roundClient.ts';
export { coPartitionedAssigner } from './kafka/coPartitionedAssigner.ts';
export { readLog, type LogRead, type LogRecord, type UndecodableRecord } from './replay/readLog.ts';
export { replayRounds, replayHistory, decideAgain, faultVerdicts, type OutcomeSummary, type RecordedOutcome, type RepeatedOutcome, type ReplayReport, type RoundReplay, type RoundFilter, type OffsetBound, type Verdict as ReplayVerdict, type Difference, type Position } from './replay/replayRounds.ts';
export { auditRound, auditVariable, auditAgent, describeCause, lifecycleStory, roundTopicNames } from './audit/index.ts';
export type * from './audit/types.ts';
export { scanLog, type ScanLogOptions } from './replay/scanLog.ts';
export { RoundHistory, type RecordedRound, type RoundInputs } from './replay/roundHistory.ts';
export { readHistory, roundTopics, type ReadHistoryOptions } from './replay/readHistory.ts';
export { counterfactual, type CounterfactualReport, type CounterfactualRound, type CounterfactualDecision } from './replay/counterfactual.ts';
export { writeCounterfactual, type WriteCounterfactualOptions } from './replay/writeCounterfactual.ts';
export { parseBound, type Bound } from './replay/window.ts';
export { loadProtocolModules } from './protocols/modules.ts';
export { readToEnd, type ReadRecord, type ReadToEndOptions } from './kafka/readToEnd.ts';
export { Processor, type ProcessorOptions } from './engine/processor.ts';
export { forwardedFromHeader, murmur2 } from './engine/routing.ts';
export type { Decider, InputRecord, Lane } from './engine/types.ts';
export { Outputs } from './engine/outputs.ts';
export { partitionOfKey } from './engine/routing.ts';
export { StoppedLatch, type StopsForGood } from './runtime/stopped.ts';
export * from './variables/index.ts';
export { coordinateSystem, adaptSystem, systemStatus, agentInfos, readRecentEvents, allocateByMarket, marketItem, SystemAdapter, FunctionRegistry, registerCoordination, registerAdaptation, sharedFunctions, directiveActions, isDirectiveAction, defaultStrategy, defaultStrategies, topologyPeers, planDirectives, directiveEvent, directiveEventId, planAdaptations, relevantSamples, type DirectiveAction, type AgentInfo, type PlannedDirective, type CoordinationFunction, type AdaptationFunction, type Adaptation, type CoordinationReport, type SentDirective, type SystemStatus, type AdaptationTrigger, type AppliedAdaptation } from './orchestrator/index.ts';
export {
  defineSpace, sampleSpace, checkParams, paramNames, canonicalJson, Random, deriveSeed,
  randomSearcher, tpeSearcher, simbaSearcher, createPruner, prunerNames, medianPruner, ashaPruner, nonePruner,
  dominates, constrainedDominates, paretoFront, paretoFronts,
} from './optimizer/index.ts';
export type { SearchSpace, ParamSpec, Params, Searcher, TrialResult, PendingTrial, AskResult, Proposal as SearcherProposal, ProposalOrigin, Pruner, BoundPruner, PrunerSpec } from './optimizer/index.ts';
export { StudyClient, type StudyClientOptions, type StartOptions as StudyStartOptions, type RunOptions as StudyRunOptions, type StudyResult } from './optimizer/client.ts';
export { Optimizer, type OptimizerOptions, type EvaluatorDirectory } from './optimizer/optimizer.ts';
export { RegistryEvaluators } from './optimizer/evaluators.ts';
export { parseStudy, type Study, type StudySpec } from './optimizer/study/spec.ts';
export { registerSearcher, searcherNames } from './optimizer/study/searchers.ts';
export { bestTrials, bestCurve, type BestTrial } from './optimizer/study/best.ts';
export { rerunStudy, type RerunOptions, type RerunReport, type RerunMiss } from './optimizer/study/rerun.ts';
export { readStudy, readStudies } from './optimizer/study/studyLog.ts';
export type { StudyRun, TrialRun, TrialState } from './optimizer/study/run.ts';
export { statusJson as studyStatusJson } from './optimizer/study/status.ts';
export { createViewServer, viewDefaults, LiveView, liveDefaults, type ViewServer, type ViewServerOptions, type LiveViewOptions, type AgentFilter } from './view/index.ts';
export type { RoundSummary, AgentRow, VariableRow, StudySummary, DeadLetterRow, DeadLetterCount, DeadLetters, Overview as ViewOverview, LiveEvent, LiveListener } from './view/index.ts';
export { signRecord, verifyRecord, signedBytes, signingHeaders, signatureHeaders, signatureAlgorithm } from './security/signing.ts';
export { agentKey, createKey, readKey, keyIdOf, keysDir, type AgentKey } from './security/keys.ts';
export { KeyDirectory, type KeyLookup, type PinnedKey, type SignedRecord } from './security/directory.ts';
export { KeyDirectoryFollower, loadKeyDirectory } from './security/directoryFollower.ts';
export { checkSignature, signatureRefusalCodes, type SignatureRefusal, type SignatureRefusalCode } from './security/verify.ts';
