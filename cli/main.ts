/** The sslkit command line: one sub-command per part, each with --help. */
import { Command, CommanderError } from 'commander';
import { UserError } from '../core/errors.js';
import { dataCommand } from './data.js';
import { methodsCommand, trainCommand } from './train.js';
import { quickstartCommand } from './quickstart.js';
import { exportCommand, inspectCommand, quantizeCommand } from './export.js';
import { indexCommand } from './index.js';
import { serveCommand } from './serve.js';
import { demoCommand } from './demo.js';
import { evalCommand } from './eval.js';
import { SSLKIT_VERSION } from '../core/version.js';

export function buildProgram(): Command {
  const program = new Command('sslkit')
    .description('Train self-supervised image encoders as ONNX graphs, export them and serve them.')
    .version(SSLKIT_VERSION)
    .showHelpAfterError('(run with --help for usage)');
  program.addCommand(dataCommand());
  program.addCommand(trainCommand());
  program.addCommand(methodsCommand());
  program.addCommand(evalCommand());
  program.addCommand(exportCommand());
  program.addCommand(quantizeCommand());
  program.addCommand(inspectCommand());
  program.addCommand(indexCommand());
  program.addCommand(serveCommand());
  program.addCommand(demoCommand());
  program.addCommand(quickstartCommand());
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) process.exit(e.exitCode);
    if (e instanceof UserError) {
      process.stderr.write(`sslkit: ${e.message}\n`);
      process.exit(2);
    }
    throw e;
  }
}
