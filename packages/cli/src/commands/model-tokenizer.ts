import { open, rename, stat, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { extractTokenizerFile, ModelFileError, sha256File, sha256Hex } from '@aipg/inference';
import { defineCommand } from '../command.ts';
import { CliError } from '../errors.ts';

/**
 * A GGUF's header and metadata (what `extractTokenizerFile` keeps) sit at its start: read the first
 * bytes, growing until the metadata is whole, never the weights.
 */
async function readMetadata(path: string): Promise<Uint8Array> {
  const size = (await stat(path)).size;
  const file = await open(path, 'r');
  try {
    for (let n = Math.min(size, 16 << 20); ; n = Math.min(size, n * 4)) {
      const buffer = new Uint8Array(n);
      await file.read(buffer, 0, n, 0);
      try {
        return extractTokenizerFile(buffer, path);
      } catch (error) {
        if (!(error instanceof ModelFileError) || n >= size) throw error;
      }
    }
  } finally {
    await file.close();
  }
}

export const modelTokenizer = defineCommand({
  path: ['model', 'tokenizer'],
  usage: '<model.gguf>',
  summary: "write a model's tokenizer file (what gateways load) and print the hashes to register",
  description: [
    'Writes <name>.tokenizer.gguf: the GGUF header and metadata without the weights (tokenizer, chat',
    'template, special tokens). Gateways tokenize prompts and render output with it: put it in each',
    "gateway's --tokenizers-dir. Prints the weights hash (sha256 of the GGUF) and the tokenizer hash",
    '(sha256 of the tokenizer file), the two hashes registerModel records on chain.',
  ].join('\n'),
  options: { out: { type: 'string' } },
  optionsHelp: [['--out <dir>', 'where to write the tokenizer file (default: the current directory)']],
  positionals: { min: 1, max: 1 },
  examples: ['aipg model tokenizer ./llama-3.1-8b-q4_k_m.gguf --out .aipg/tokenizers'],
  async run({ args, flags, io }) {
    const gguf = resolve(args[0] as string);
    const bytes = await readMetadata(gguf).catch((error: unknown) => {
      if (error instanceof ModelFileError) throw new CliError(`${error.shortMessage}: ${gguf}`, 'USAGE');
      if ((error as NodeJS.ErrnoException).code === 'ENOENT')
        throw new CliError(`no such file: ${gguf}`, 'USAGE');
      throw error;
    });
    const out = resolve(typeof flags.out === 'string' ? flags.out : '.');
    const path = join(out, `${basename(gguf).replace(/\.gguf$/i, '')}.tokenizer.gguf`);
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
    const w = (line: string) => io.stdout.write(`${line}\n`);
    w(`tokenizer file  ${path} (${bytes.length.toLocaleString('en-US')} bytes)`);
    w(`weights hash    ${await sha256File(gguf)}`);
    w(`tokenizer hash  ${sha256Hex(bytes)}`);
    return 0;
  },
});
