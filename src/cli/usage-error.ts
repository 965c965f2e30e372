/** A problem with what the user asked for on the command line (a flag, its value, an argument): one line, exit status 2. */
export class UsageError extends Error {}
