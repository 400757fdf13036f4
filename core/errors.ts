/**
 * An error caused by what a user typed or gave (a path, a dataset name, a file, a config): the CLI
 * prints its one-line message without a stack trace and exits with status 2.
 */
export class UserError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'UserError';
  }
}
