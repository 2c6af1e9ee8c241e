import type { ChatMessage } from '@aipg/core';

/**
 * The one chat template of the project's generated models. The GGUF carries it as
 * `tokenizer.chat_template` (Jinja, the Hugging Face convention, so llama.cpp server, vLLM and
 * Ollama's renderers can use it); `applyChatTemplate` is the same template in code, shared by the
 * worker and the validator. Role markers are control tokens and `</s>` (the end token) closes
 * every turn, so a model that emits `</s>` ends its answer.
 *
 * Rendered Jinja = `<s>` + `applyChatTemplate(messages)`: the code form leaves the BOS out
 * because the canonical prompt tokens are `[BOS, ...tokenize(applyChatTemplate(messages))]`
 * with special tokens parsed (see `promptTokenIds` in tokenizer.ts).
 */
export const CHAT_TEMPLATE =
  "{{ bos_token }}{% for message in messages %}{{ '<|' + message['role'] + '|>' + message['content'] + eos_token }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";

const ROLE_TOKENS = {
  system: '<|system|>',
  user: '<|user|>',
  assistant: '<|assistant|>',
} as const satisfies Record<ChatMessage['role'], string>;

const EOS_TEXT = '</s>';

/**
 * `<|role|>content</s>` per message, then `<|assistant|>` (the generation prompt).
 * Content is not escaped: text that spells a control token (`</s>`, `<|user|>`) becomes that token
 * when tokenized, exactly as in llama.cpp server, vLLM and Ollama, which tokenize the rendered
 * template with special-token parsing on.
 */
export function applyChatTemplate(messages: readonly ChatMessage[]): string {
  let out = '';
  for (const m of messages) out += `${ROLE_TOKENS[m.role]}${m.content}${EOS_TEXT}`;
  return `${out}${ROLE_TOKENS.assistant}`;
}
