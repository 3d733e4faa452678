import { main } from './main.js';

/** Runs the CLI from source (node --import tsx src/cli/run.ts ...), as tests do; bin/reenact.js runs the build. */
process.exitCode = await main(process.argv);
