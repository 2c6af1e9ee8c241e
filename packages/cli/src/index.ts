export { type Command, type CommandContext, defineCommand, type Io } from './command.ts';
export { commands } from './commands/index.ts';
export { type CliConfig, globalOptions, type KeySource, parseAddress, resolveConfig } from './config.ts';
export { type Connection, connect, connectSigner, loadAccount, type SignerConnection } from './connect.ts';
export { CliError, type CliErrorCode } from './errors.ts';
export { formatError, type MainParameters, main } from './main.ts';
export { aipg, formatDuration, formatTime, table, toJson } from './output.ts';
