// Entry point of the `keepvs` binary. Composition lives in daemon/; this only hands over argv.
console.error('keepvs: the daemon entry point is being built (see issues)');
process.exitCode = 3;
