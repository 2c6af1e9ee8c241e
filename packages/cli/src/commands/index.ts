import type { Command } from '../command.ts';
import { chainUp } from './chain-up.ts';
import { chat } from './chat.ts';
import { devnet } from './devnet.ts';
import { indexerStart } from './indexer-start.ts';
import { modelTokenizer } from './model-tokenizer.ts';
import { stake } from './stake.ts';
import { status } from './status.ts';
import { unbond } from './unbond.ts';
import { validatorStart } from './validator-start.ts';
import { withdraw } from './withdraw.ts';
import { workerStart } from './worker-start.ts';

/** Every `aipg` command: add one with one line (its file lives next to this one). */
export const commands: readonly Command[] = [
  devnet,
  chainUp,
  stake,
  unbond,
  withdraw,
  status,
  workerStart,
  validatorStart,
  indexerStart,
  modelTokenizer,
  chat,
];
