import { readFileSync } from 'node:fs';

/** CPU milliseconds used so far by this process (all its threads) and by its finished child processes (ffmpeg). */
export function cpuMs(): { own: number; children: number } {
  const usage = process.cpuUsage();
  let children: number;
  try {
    // Fields 16 and 17 of /proc/self/stat: cutime and cstime, in clock ticks (100 per second).
    const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
    children = ((Number(fields[13]) + Number(fields[14])) * 1000) / 100;
  } catch {
    children = 0;
  }
  return { own: (usage.user + usage.system) / 1000, children };
}
