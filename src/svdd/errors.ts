/** A problem with what the user asked for (flags, settings, files, directories): one line, exit status 2. */
export class UsageError extends Error {}
