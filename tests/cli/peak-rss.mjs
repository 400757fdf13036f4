// Preloaded (node --import) into an sslkit process by tests: on exit, writes the process's peak
// resident memory (VmHWM, bytes) to $PEAK_RSS_FILE.
import fs from 'node:fs';
import process from 'node:process';

process.on('exit', () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync('/proc/self/status', 'utf8'));
  if (m && process.env.PEAK_RSS_FILE) fs.writeFileSync(process.env.PEAK_RSS_FILE, String(Number(m[1]) * 1024));
});
