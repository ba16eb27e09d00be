/** What the gated call needs of the prompt broker: its `ask`, and nothing else. */
import type { PromptBroker } from './prompt-broker.js';

export type PromptBrokerLike = Pick<PromptBroker, 'ask'>;
