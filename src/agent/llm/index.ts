/** The LLM planner (LangChain v1 createAgent over any OpenAI-compatible endpoint) and what it records. */
export { createLlmPlanner, type LlmPlannerOptions } from './planner';
export { PROMPT_VERSION, SYSTEM_PROMPT, SYSTEM_PROMPT_SHA256, untrusted } from './prompt';
export { offerTools, type OfferedTool } from './tools';
export { STATE_KIND, STATE_VERSION, type RunState } from './state';
