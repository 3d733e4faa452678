import { removePendingOutputs } from '../output.js';

/** How long the library gets to stop and remove its temporary files after Ctrl-C before the CLI exits anyway. */
const GRACE_MS = 10_000;

const EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

export interface Interruption {
  /** Aborted on the first SIGINT or SIGTERM (its reason: the signal's name); every command passes it to the library. */
  readonly signal: AbortSignal;
  /** 130 after SIGINT, 143 after SIGTERM, undefined while none came. */
  readonly exitCode: number | undefined;
  /** Stops listening (the process then handles the signals as it would without the CLI). */
  dispose(): void;
}

/**
 * The CLI owns the signals, the library never does: SIGINT or SIGTERM aborts the commands'
 * AbortSignal, the library unwinds (ffmpeg killed, temporary outputs removed) and the command
 * ends with CANCELLED, which main() turns into exit code 130 or 143. Should the work not stop
 * within the grace time, or a second signal come, the CLI removes what is still half-written
 * and exits at once.
 */
export function listenForInterrupts(): Interruption {
  const controller = new AbortController();
  let exitCode: number | undefined;
  const forceExit = () => {
    removePendingOutputs();
    process.exit(exitCode);
  };
  const onSignal = (name: keyof typeof EXIT_CODES) => {
    if (controller.signal.aborted) forceExit();
    exitCode = EXIT_CODES[name];
    controller.abort(name);
    // Unreferenced: it fires only while something still keeps the process alive.
    setTimeout(forceExit, GRACE_MS).unref();
  };
  const onInterrupt = () => onSignal('SIGINT');
  const onTerminate = () => onSignal('SIGTERM');
  process.on('SIGINT', onInterrupt);
  process.on('SIGTERM', onTerminate);
  return {
    signal: controller.signal,
    get exitCode() {
      return exitCode;
    },
    dispose() {
      process.off('SIGINT', onInterrupt);
      process.off('SIGTERM', onTerminate);
    },
  };
}
