/** What the gated call needs from the prompt broker; the broker itself lives in prompt-broker.ts. */
import type { AnswerScope, PromptOutcome } from '../transport/local-api.js';

export interface PromptInput {
  readonly caller_host: string;
  readonly caller_principal: string;
  readonly tool: string;
  readonly operation: string | null;
  readonly target: string;
  readonly asked_by: string;
  readonly reason: string;
}

export interface PromptResolution {
  readonly outcome: PromptOutcome;
  readonly scope?: AnswerScope | undefined;
  readonly ask_ms: number;
  /** Who ended the prompt: an operator's answer, the timeout, or nobody (no operator connected, or the caller left). */
  readonly answered_by: 'operator' | 'timeout' | 'nobody';
  /** One sentence for the audit log and the caller's error. */
  readonly reason: string;
}

export interface PromptBrokerLike {
  ask(input: PromptInput, signal?: AbortSignal): Promise<PromptResolution>;
}
