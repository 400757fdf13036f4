/** The sslkit command line: one sub-command per part, each with --help. */
import { Command, CommanderError } from 'commander';
import { UserError } from '../core/errors.js';

export function buildProgram(): Command {
  const program = new Command('sslkit')
    .description('Train self-supervised image encoders as ONNX graphs, export them and serve them.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)');
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
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
