// Entry point of the `keepvsadm` binary.
console.error('keepvsadm: being built (see issues)');
process.exitCode = 2;
